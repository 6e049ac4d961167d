package mdns

import (
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// reply is one message the responder sends in answer to a query.
type reply struct {
	msg *dns.Msg
	// unicast sends the reply to the querier's address and port; otherwise
	// it is multicast on the interface the query came in on.
	unicast bool
	// delay asks for the random 20-120 ms wait of RFC 6762 section 6,
	// which applies to multicast answers holding shared records.
	delay bool
}

const (
	// maxLegacySize is the largest legacy unicast reply when the query has
	// no OPT record, and maxReplySize the largest multicast or QU reply.
	maxLegacySize = dns.MinMsgSize
	maxReplySize  = 1440
)

// respond returns the replies to query q from src. recent reports whether
// a record was multicast recently enough (a quarter of its TTL) for a QU
// question to be answered by unicast. respond never modifies q.
func (z *zone) respond(q *dns.Msg, src netip.AddrPort, recent func(dns.RR) bool) []reply {
	if q.Response || q.Opcode != dns.OpcodeQuery || q.Rcode != dns.RcodeSuccess || len(q.Question) == 0 {
		return nil
	}
	if src.Port() != Port {
		return z.respondLegacy(q)
	}
	var multicast, unicast []dns.RR
	for _, question := range q.Question {
		for _, rr := range z.answers(question) {
			if knownAnswer(q, rr) {
				continue
			}
			if question.Qclass&unicastResponse != 0 && recent != nil && recent(rr) {
				unicast = appendNew(unicast, rr)
			} else {
				multicast = appendNew(multicast, rr)
			}
		}
	}
	var out []reply
	if len(multicast) > 0 {
		m := z.response(q, multicast)
		m.Id = 0
		out = append(out, reply{msg: m, delay: len(q.Ns) == 0 && z.hasShared(multicast)})
	}
	if len(unicast) > 0 {
		out = append(out, reply{msg: z.response(q, unicast), unicast: true})
	}
	return out
}

// respondLegacy answers a query that did not come from port 5353: one
// unicast reply echoing the ID and questions, TTLs at most 10 s and no
// cache-flush bits (RFC 6762 section 6.7).
func (z *zone) respondLegacy(q *dns.Msg) []reply {
	var answers []dns.RR
	for _, question := range q.Question {
		for _, rr := range z.answers(question) {
			answers = appendNew(answers, rr)
		}
	}
	if len(answers) == 0 {
		return nil
	}
	m := z.response(q, answers)
	m.Question = slices.Clone(q.Question)
	for _, rrs := range [][]dns.RR{m.Answer, m.Extra} {
		for _, rr := range rrs {
			h := rr.Header()
			h.Class &^= cacheFlush
			h.Ttl = min(h.Ttl, legacyTTL)
		}
	}
	size := maxLegacySize
	if opt := q.IsEdns0(); opt != nil {
		size = min(max(int(opt.UDPSize()), maxLegacySize), maxReplySize)
	}
	m.Truncate(size)
	return []reply{{msg: m, unicast: true}}
}

// response builds an authoritative response with answers and the
// additional records they call for, all copies with the cache-flush bit
// on unique records.
func (z *zone) response(q *dns.Msg, answers []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.Id = q.Id
	m.Response = true
	m.Authoritative = true
	var extra []dns.RR
	for _, rr := range answers {
		for _, add := range z.additional(rr) {
			if !containsRecord(answers, add) && !knownAnswer(q, add) {
				extra = appendNew(extra, add)
			}
		}
	}
	m.Answer = z.copies(answers)
	m.Extra = z.copies(extra)
	m.Truncate(maxReplySize)
	return m
}

// answers returns the records that answer question: the records with its
// name and type (any type for ANY), or the NSEC record when the name is
// one of ours and the type is missing.
func (z *zone) answers(question dns.Question) []dns.RR {
	class := question.Qclass &^ unicastResponse
	if class != dns.ClassINET && class != dns.ClassANY {
		return nil
	}
	key := nameKey(question.Name)
	var out []dns.RR
	var nsec dns.RR
	for _, r := range z.records {
		h := r.rr.Header()
		if nameKey(h.Name) != key {
			continue
		}
		switch {
		case h.Rrtype == dns.TypeNSEC:
			if question.Qtype == dns.TypeNSEC {
				out = append(out, r.rr)
			}
			nsec = r.rr
		case question.Qtype == dns.TypeANY || question.Qtype == h.Rrtype:
			out = append(out, r.rr)
		}
	}
	if len(out) == 0 && nsec != nil {
		out = append(out, nsec)
	}
	return out
}

// additional returns the records RFC 6763 section 12 and RFC 6762 section
// 6.2 recommend alongside rr: SRV, TXT and addresses for a service PTR,
// addresses for an SRV, the other address family for an address, and NSEC
// for what the host or instance does not have.
func (z *zone) additional(rr dns.RR) []dns.RR {
	switch rr := rr.(type) {
	case *dns.PTR:
		if nameKey(rr.Hdr.Name) == nameKey(enumerationName) {
			return nil
		}
		out := append(z.recordsOf(rr.Ptr, dns.TypeSRV), z.recordsOf(rr.Ptr, dns.TypeTXT)...)
		return append(out, z.hostRecords()...)
	case *dns.SRV:
		return z.hostRecords()
	case *dns.A, *dns.AAAA:
		return z.hostRecords()
	}
	return nil
}

// hostRecords returns the address records of the host and, when it has
// no address of one family, its NSEC record.
func (z *zone) hostRecords() []dns.RR {
	out := append(z.recordsOf(z.host, dns.TypeA), z.recordsOf(z.host, dns.TypeAAAA)...)
	var v4, v6 bool
	for _, a := range z.addrs {
		v4, v6 = v4 || a.Is4(), v6 || a.Is6()
	}
	if !v4 || !v6 {
		out = append(out, z.recordsOf(z.host, dns.TypeNSEC)...)
	}
	return out
}

func (z *zone) recordsOf(name string, rrtype uint16) []dns.RR {
	key := nameKey(name)
	var out []dns.RR
	for _, r := range z.records {
		if r.rr.Header().Rrtype == rrtype && nameKey(r.rr.Header().Name) == key {
			out = append(out, r.rr)
		}
	}
	return out
}

// isUnique reports whether rr is one of z's unique records.
func (z *zone) isUnique(rr dns.RR) bool {
	for _, r := range z.records {
		if r.rr == rr {
			return r.unique
		}
	}
	return false
}

func (z *zone) hasShared(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if !z.isUnique(rr) {
			return true
		}
	}
	return false
}

// copies returns copies of rrs with the cache-flush bit set on unique
// records, so the zone's own records are never changed.
func (z *zone) copies(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		c := dns.Copy(rr)
		if z.isUnique(rr) {
			c.Header().Class |= cacheFlush
		}
		out = append(out, c)
	}
	return out
}

// knownAnswer reports whether q lists rr in its answer section with at
// least half of rr's TTL left (RFC 6762 section 7.1).
func knownAnswer(q *dns.Msg, rr dns.RR) bool {
	for _, known := range q.Answer {
		if known.Header().Ttl >= rr.Header().Ttl/2 && sameRecord(known, rr) {
			return true
		}
	}
	return false
}

func containsRecord(rrs []dns.RR, rr dns.RR) bool {
	return slices.Contains(rrs, rr)
}

func appendNew(rrs []dns.RR, rr dns.RR) []dns.RR {
	if containsRecord(rrs, rr) {
		return rrs
	}
	return append(rrs, rr)
}

// announcement returns the unsolicited response that publishes every
// record of z, or, with ttl0, the goodbye that withdraws them.
func (z *zone) announcement(goodbye bool) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Authoritative = true
	var rrs []dns.RR
	for _, r := range z.records {
		if goodbye && r.rr.Header().Rrtype == dns.TypeNSEC {
			continue
		}
		rrs = append(rrs, r.rr)
	}
	m.Answer = z.copies(rrs)
	if goodbye {
		for _, rr := range m.Answer {
			rr.Header().Ttl = 0
		}
	}
	return m
}

// goodbyeFor returns the goodbye for the records of old that next no
// longer has, or nil when there are none.
func goodbyeFor(old, next *zone) *dns.Msg {
	m := old.announcement(true)
	m.Answer = slices.DeleteFunc(m.Answer, func(rr dns.RR) bool {
		for _, r := range next.records {
			if sameRecord(r.rr, rr) {
				return true
			}
		}
		return false
	})
	if len(m.Answer) == 0 {
		return nil
	}
	return m
}

// probe returns the probe query of RFC 6762 section 8.1 for names (keys
// of unique names of z): an ANY question for each, with the proposed
// records in the authority section. Probes are sent as QM questions, so
// the answers of defending hosts come by multicast and reach the prober
// even when other sockets share port 5353.
func (z *zone) probe(names map[string]bool) *dns.Msg {
	m := new(dns.Msg)
	for _, name := range z.names() {
		if names[nameKey(name)] {
			m.Question = append(m.Question, dns.Question{Name: name, Qtype: dns.TypeANY, Qclass: dns.ClassINET})
		}
	}
	for _, rr := range z.uniqueRecords() {
		if names[nameKey(rr.Header().Name)] {
			m.Ns = append(m.Ns, dns.Copy(rr))
		}
	}
	return m
}

// conflict reports whether response m, from another host, claims one of
// names (keys of unique names of z) with data z does not have, and
// whether the name is the instance or the host name. Goodbyes (TTL 0) and
// records identical to ours or to those in also (our own, looped back, or
// a copy of them) are no conflict.
func (z *zone) conflict(m *dns.Msg, names map[string]bool, also []dns.RR) (instance, host bool) {
	if !m.Response {
		return false, false
	}
	ours := append(z.uniqueRecords(), also...)
	for _, rr := range append(slices.Clip(m.Answer), m.Extra...) {
		h := rr.Header()
		key := nameKey(h.Name)
		if !names[key] || h.Ttl == 0 {
			continue
		}
		switch h.Rrtype {
		case dns.TypeSRV, dns.TypeTXT, dns.TypeA, dns.TypeAAAA:
		default:
			continue
		}
		if slices.ContainsFunc(ours, func(o dns.RR) bool { return sameRecord(o, rr) }) {
			continue
		}
		if key == nameKey(z.host) {
			host = true
		} else {
			instance = true
		}
	}
	return instance, host
}

// lostTieBreak reports whether probe m, from another host probing for one
// of names at the same time as z, wins over z's own probe (RFC 6762
// section 8.2). A probe identical to ours (our own, looped back) does not
// win.
func (z *zone) lostTieBreak(m *dns.Msg, names map[string]bool) bool {
	if m.Response || len(m.Ns) == 0 {
		return false
	}
	ours := z.uniqueRecords()
	for _, name := range z.names() {
		key := nameKey(name)
		if !names[key] {
			continue
		}
		var mine, theirs []dns.RR
		for _, rr := range ours {
			if nameKey(rr.Header().Name) == key {
				mine = append(mine, rr)
			}
		}
		for _, rr := range m.Ns {
			if nameKey(rr.Header().Name) == key {
				theirs = append(theirs, rr)
			}
		}
		if len(theirs) == 0 {
			continue
		}
		slices.SortFunc(mine, compareRecords)
		slices.SortFunc(theirs, compareRecords)
		if compareRecordLists(mine, theirs) < 0 {
			return true
		}
	}
	return false
}

func compareRecordLists(a, b []dns.RR) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareRecords(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
