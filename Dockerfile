# Tally's container image: tallyd, tallyctl and tally-agent, static, on
# nothing else. The binaries are built outside Docker (no Go image needed):
# `make image` builds them into dist/linux-ARCH as `make cross` does, stages
# them with the files below in dist/image, and builds this file with the
# repository as the context (.dockerignore lets only dist/image in).
#
#   docker run -d -p 127.0.0.1:8443:8443 -v tally-data:/data -e TALLY_ADMIN_PASSWORD=… tally
#
# The node keeps everything in the volume /data and runs as tally
# (10001:10001). There are no CA certificates: peers use the cluster CA, and
# the http back-office connector takes its back office's CA or pin in its
# configuration (a file in /data).
FROM scratch

ARG VERSION=dev
LABEL org.opencontainers.image.title="Tally" \
      org.opencontainers.image.description="On-premise license server: tallyd, tallyctl and tally-agent" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/tallyhq/tally"

# dist/image/root: the binaries, /etc/passwd and /etc/group (the user and
# group by name, for docker exec, ps and the files in /data) and /tmp (mode
# 1777, for connector plugins' sockets). dist/image/tally: an empty /data
# (mode 0700) owned by tally; a new named volume starts as a copy of it.
COPY dist/image/root/ /
COPY --chown=10001:10001 dist/image/tally/ /

USER 10001:10001
WORKDIR /data
VOLUME /data

# HTTPS (web UI, API, devices), discovery, raft between nodes. mDNS
# (5353/udp multicast) works only where the container is on the LAN.
EXPOSE 8443/tcp 30005/udp 61616/tcp

# Health needs no login and accepts the node's self-signed certificate; it
# answers once the node serves (after a cluster has formed). It assumes
# the default --https-port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=2m --retries=3 \
    CMD ["/tallyctl", "--insecure", "--server", "https://127.0.0.1:8443", "health"]

ENTRYPOINT ["/tallyd"]
CMD ["--data-dir", "/data", "--bind", "0.0.0.0"]
