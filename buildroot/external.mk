include $(sort $(wildcard $(BR2_EXTERNAL_TALLY_PATH)/package/*/*.mk))
