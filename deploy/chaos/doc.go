// Command chaos runs a Tally cluster of containers under faults and checks
// that it keeps its promises (issue 10, "Chaos").
//
// It starts three (or, with -nodes 5, five) containers of the tally image
// on a private Docker network with fixed addresses, formed by mDNS with
// --bootstrap-expect and --dev (the demo rights), and drives a fleet of
// simulated devices from this process over the device protocol: each
// device checks out, renews and returns a counted feature on its node in a
// loop, and every operation is recorded with its call and return times and
// outcome. Devices that race for one-time keys onboard concurrently on
// different nodes.
//
// Meanwhile nemeses run one at a time, each healed before the next: a node
// killed with SIGKILL (a random one and the leader) and started again; a
// node paused and unpaused (a random one and the leader); network
// partitions made with iptables inside the containers' network namespaces
// (the leader isolated, random halves, a bridge), each checked to cut the
// raft port; the last node's /data (a 512 MB ext4 file system on a loop
// device, bound into the container) filled to the last block; and a
// rolling restart. A rolling upgrade runs when -upgrade-from names the
// previous release's image: the cluster starts on it and each node is
// replaced by -image on its data. -nemeses picks which to cycle through.
//
// At the end, after healing, it checks: the checkout history is
// linearizable (porcupine; a failing history is kept as HTML), both where
// a request whose outcome the device never learned may land any time
// later, and in session order, where it must land before the device's
// next request (else an acknowledged lease is silently undone); no node
// ever showed more in use than total plus overdraft (polled during the
// run); no acknowledged lease was lost; every one-time key onboarded at
// most one device; the audit chain verifies on every node; every node
// converges to the same applied index and the same features and devices.
// The summary goes to OUT/RUN/summary.md and summary.json, beside the
// history (history.json, which -recheck checks again) and run.log.
//
// It needs root (nsenter, iptables, mount) and Docker, and reaches the
// containers' addresses directly on the bridge. Everything it creates
// carries the label tally.chaos.run=RUN and is removed at the end. make
// chaos-short runs it for about two and a half minutes; make chaos runs
// longer three- and five-node runs; make chaos-upgrade upgrades from the
// previous commit's image.
//
// What it cannot do here is said in the summary: per-container clock skew
// (containers share the host kernel's clock).
package main
