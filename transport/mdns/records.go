package mdns

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

const (
	// Port is the Multicast DNS port.
	Port = 5353

	enumerationName = "_services._dns-sd._udp.local."
	localSuffix     = ".local."

	// hostTTL is for records that name a host (SRV, A, AAAA, NSEC) and
	// otherTTL for the rest, as RFC 6762 section 10 recommends.
	hostTTL   = 120
	otherTTL  = 4500
	legacyTTL = 10

	// cacheFlush is the top bit of the class of a unique record, and
	// unicastResponse the same bit in a question's class (QU).
	cacheFlush      = 1 << 15
	unicastResponse = 1 << 15

	maxLabel = 63
	maxTXT   = 255
)

var (
	multicastV4 = netip.MustParseAddrPort("224.0.0.251:5353")
	multicastV6 = netip.MustParseAddrPort("[ff02::fb]:5353")
)

// Service is one DNS-SD service published under the responder's instance
// name.
type Service struct {
	// Type is the service type, "_tally._tcp" or "_tally-ha._tcp"; a
	// trailing ".local." is accepted.
	Type string
	// Port is the TCP or UDP port the service listens on.
	Port uint16
	// TXT holds the key=value pairs of the TXT record, for example
	// fp=<fingerprint>, api=/api/v1, ws=/ws/device and v=1.
	TXT map[string]string
}

// typeName returns the fully qualified service type, "_tally._tcp.local.".
func (s Service) typeName() string {
	return serviceTypeName(s.Type)
}

func serviceTypeName(t string) string {
	t = strings.TrimSuffix(strings.TrimSuffix(t, "."), ".local")
	return t + localSuffix
}

// validate checks that s can be published.
func (s Service) validate() error {
	labels := strings.Split(strings.TrimSuffix(s.typeName(), localSuffix), ".")
	if len(labels) != 2 || (labels[1] != "_tcp" && labels[1] != "_udp") ||
		len(labels[0]) < 2 || len(labels[0]) > 16 || labels[0][0] != '_' {
		return fmt.Errorf("%w: service type %q is not _name._tcp or _name._udp", ErrInvalidConfig, s.Type)
	}
	for _, c := range labels[0][1:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: service type %q has a character other than letters, digits and '-'", ErrInvalidConfig, s.Type)
		}
	}
	if s.Port == 0 {
		return fmt.Errorf("%w: service %s has port 0", ErrInvalidConfig, s.Type)
	}
	for k, v := range s.TXT {
		if k == "" || strings.Contains(k, "=") || len(k)+1+len(v) > maxTXT {
			return fmt.Errorf("%w: TXT key %q of service %s is empty, holds '=' or is too long", ErrInvalidConfig, k, s.Type)
		}
	}
	return nil
}

// txtStrings returns the TXT strings in key order, so that the record is
// the same every time it is built.
func (s Service) txtStrings() []string {
	if len(s.TXT) == 0 {
		return []string{""}
	}
	out := make([]string, 0, len(s.TXT))
	for _, k := range slices.Sorted(maps.Keys(s.TXT)) {
		out = append(out, escapeTXT(k+"="+s.TXT[k]))
	}
	return out
}

// escapeTXT escapes the backslashes miekg/dns would read as escapes when
// it packs a TXT string.
func escapeTXT(s string) string {
	return strings.ReplaceAll(s, `\`, `\\`)
}

// unescapeTXT undoes the \X and \DDD escapes miekg/dns writes when it
// unpacks a TXT string.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			b.WriteByte((s[i]-'0')*100 + (s[i+1]-'0')*10 + (s[i+2] - '0'))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// record is one resource record the responder owns. A unique record is
// one only this responder may publish (SRV, TXT, A, AAAA, NSEC); a shared
// one (PTR) may come from many responders.
type record struct {
	rr     dns.RR
	unique bool
}

// zone is the immutable set of records published under one pair of names.
// A new zone is built whenever the names, services or addresses change.
type zone struct {
	instance string // the instance label, unescaped
	host     string // canonical host name
	services []Service
	addrs    []netip.Addr
	records  []record
	owned    map[string]bool // keys of the names whose records are unique
	// instanceNames maps the key of each instance name to its canonical form.
	instanceNames map[string]string
}

// newZone builds the records for instance and host.
func newZone(instance, host string, services []Service, addrs []netip.Addr) (*zone, error) {
	if instance == "" || len(instance) > maxLabel {
		return nil, fmt.Errorf("%w: instance name %q must have 1 to %d bytes", ErrInvalidConfig, instance, maxLabel)
	}
	h, err := canonicalName(dns.Fqdn(host))
	if err != nil || !strings.HasSuffix(nameKey(h), localSuffix) || len(dns.SplitDomainName(h)) != 2 {
		return nil, fmt.Errorf("%w: host name %q must be one label under .local", ErrInvalidConfig, host)
	}
	z := &zone{
		instance:      instance,
		host:          h,
		services:      slices.Clone(services),
		owned:         map[string]bool{nameKey(h): true},
		instanceNames: map[string]string{},
	}
	seen := map[string]bool{}
	for _, s := range services {
		if err := s.validate(); err != nil {
			return nil, err
		}
		t := s.typeName()
		if seen[nameKey(t)] {
			return nil, fmt.Errorf("%w: service type %s listed twice", ErrInvalidConfig, s.Type)
		}
		seen[nameKey(t)] = true
		name, err := canonicalName(escapeLabel(instance) + "." + t)
		if err != nil {
			return nil, fmt.Errorf("%w: instance name %q: %v", ErrInvalidConfig, instance, err)
		}
		z.owned[nameKey(name)] = true
		z.instanceNames[nameKey(name)] = name
		z.add(false, &dns.PTR{Hdr: header(enumerationName, dns.TypePTR, otherTTL), Ptr: t})
		z.add(false, &dns.PTR{Hdr: header(t, dns.TypePTR, otherTTL), Ptr: name})
		z.add(true, &dns.SRV{Hdr: header(name, dns.TypeSRV, hostTTL), Port: s.Port, Target: h})
		z.add(true, &dns.TXT{Hdr: header(name, dns.TypeTXT, otherTTL), Txt: s.txtStrings()})
	}
	var types []uint16
	z.addrs = normalAddrs(addrs)
	for _, a := range z.addrs {
		if a.Is4() {
			z.add(true, &dns.A{Hdr: header(h, dns.TypeA, hostTTL), A: a.AsSlice()})
			types = append(types, dns.TypeA)
		} else {
			z.add(true, &dns.AAAA{Hdr: header(h, dns.TypeAAAA, hostTTL), AAAA: a.AsSlice()})
			types = append(types, dns.TypeAAAA)
		}
	}
	slices.Sort(types)
	z.add(true, &dns.NSEC{Hdr: header(h, dns.TypeNSEC, hostTTL), NextDomain: h, TypeBitMap: slices.Compact(types)})
	for _, name := range z.instanceNames {
		z.add(true, &dns.NSEC{Hdr: header(name, dns.TypeNSEC, hostTTL), NextDomain: name, TypeBitMap: []uint16{dns.TypeTXT, dns.TypeSRV}})
	}
	return z, nil
}

func (z *zone) add(unique bool, rr dns.RR) {
	z.records = append(z.records, record{rr: rr, unique: unique})
}

// names returns the unique names, instance names first, in a stable order.
func (z *zone) names() []string {
	out := slices.Sorted(maps.Values(z.instanceNames))
	return append(out, z.host)
}

// uniqueRecords returns the unique records other than NSEC: what a probe
// claims and what a conflict is checked against.
func (z *zone) uniqueRecords() []dns.RR {
	var out []dns.RR
	for _, r := range z.records {
		if r.unique && r.rr.Header().Rrtype != dns.TypeNSEC {
			out = append(out, r.rr)
		}
	}
	return out
}

func header(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// escapeLabel escapes the characters that would otherwise split or escape
// a label in presentation format.
func escapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '.' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonicalName returns name in the presentation form miekg/dns produces
// when it reads a name off the wire, so names built here and names
// received compare equal.
func canonicalName(name string) (string, error) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return "", err
	}
	out, _, err := dns.UnpackDomainName(buf[:n], 0)
	return out, err
}

// nameKey is the form names are compared in: mDNS names compare without
// regard to ASCII case, and canonical names are ASCII (other bytes are
// escaped as \DDD).
func nameKey(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// firstLabel returns the first label of name, unescaped.
func firstLabel(name string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil || n < 1 || int(buf[0])+1 > n {
		return ""
	}
	return string(buf[1 : 1+int(buf[0])])
}

// rdata returns the record data of rr in wire form, with uncompressed
// names.
func rdata(rr dns.RR) []byte {
	c := dns.Copy(rr)
	*c.Header() = dns.RR_Header{Name: ".", Rrtype: rr.Header().Rrtype}
	buf := make([]byte, dns.Len(c)+16)
	n, err := dns.PackRR(c, buf, 0, nil, false)
	if err != nil || n < 11 {
		return nil
	}
	return buf[11:n]
}

// sameRecord reports whether a and b are the same record apart from TTL
// and the cache-flush bit.
func sameRecord(a, b dns.RR) bool {
	ha, hb := a.Header(), b.Header()
	return ha.Rrtype == hb.Rrtype && ha.Class&^cacheFlush == hb.Class&^cacheFlush &&
		nameKey(ha.Name) == nameKey(hb.Name) && bytes.Equal(rdata(a), rdata(b))
}

// compareRecords orders records as RFC 6762 section 8.2 does for the
// probe tie-break: by class without the cache-flush bit, then type, then
// record data byte by byte.
func compareRecords(a, b dns.RR) int {
	ha, hb := a.Header(), b.Header()
	if c := cmp.Compare(ha.Class&^cacheFlush, hb.Class&^cacheFlush); c != 0 {
		return c
	}
	if c := cmp.Compare(ha.Rrtype, hb.Rrtype); c != 0 {
		return c
	}
	return bytes.Compare(rdata(a), rdata(b))
}
