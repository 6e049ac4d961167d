// Package mdns publishes Tally on the local link with Multicast DNS and
// DNS-Based Service Discovery (RFC 6762 and RFC 6763), and finds it again
// from a device.
//
// A Responder owns one instance name (for example "Tally on node1") and one
// host name (for example "node1.local."), and publishes under them a list of
// service types: _tally._tcp for devices and, later, _tally-ha._tcp for
// peers. For each service it answers PTR queries for the service type and
// for the _services._dns-sd._udp.local. enumeration, SRV and TXT queries
// for the instance, and A and AAAA queries for the host, with the
// additional records RFC 6763 section 12 recommends and NSEC records for
// the types it does not have.
//
// # Lifecycle
//
// Start joins 224.0.0.251 and ff02::fb on port 5353, probes for its names
// (three queries 250 ms apart, RFC 6762 section 8.1), renames itself on a
// conflict ("Tally on node1 (2)", "node1-2.local."), and announces its
// records twice, one second apart. It then answers queries until Close,
// which sends the records again with TTL 0 (goodbye) and leaves the groups.
// SetServices changes the published services at run time: removed ones get
// a goodbye, new ones are probed and announced.
//
// # Answers
//
// Answering is a pure function of the published records and one received
// message (respond), so it is tested and fuzzed without sockets. Unique
// records carry the cache-flush bit; answers the querier already knows
// (with at least half their TTL left) are suppressed; QU questions are
// answered by unicast when the record was multicast recently and by
// multicast otherwise; legacy unicast queries (source port other than 5353)
// get a unicast reply that echoes the ID and the questions, with TTLs of at
// most 10 s and no cache-flush bits (RFC 6762 section 6.7). Responses from
// other hosts are only read for conflict detection. Messages that do not
// parse, and queries with a non-zero opcode or rcode, are dropped and
// counted.
//
// # Browsing
//
// Browse sends multicast (QM) queries for a service type from port 5353 and
// collects the PTR, SRV, TXT and address records that come back, asking
// again for what is missing, until its timeout.
package mdns
