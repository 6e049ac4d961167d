// Package container tests Tally's container image and deploy/compose.yaml
// end to end: the image built FROM scratch by `make image`, three nodes
// that form a cluster by mDNS on a private Docker network, devices checking
// out against each node, the leader killed and brought back.
//
// It holds no code but the test, which runs only with TALLY_E2E=1 and
// needs a Docker engine and docker-compose (or the compose plugin); `make
// e2e-container` builds the image and runs it. The image is TALLY_IMAGE,
// or one the test builds with `make image`. Each run is a compose project
// of its own (its own name, network, subnet and volumes), taken down with
// its volumes at the end, also when the test fails; the test touches no
// other container.
//
// rootfs/etc holds the /etc/passwd and /etc/group of the image: the user
// tally (10001:10001) that tallyd runs as.
package container
