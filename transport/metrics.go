package transport

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// durationBuckets are the upper bounds, in seconds, of the request
// duration histogram.
var durationBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// httpMetrics counts requests by route and status, and their durations by
// route. Routes are the registered patterns, so the label set is bounded.
type httpMetrics struct {
	mu            sync.Mutex
	requests      map[routeCode]uint64
	durations     map[string]*histogram
	loginFailures uint64
	loginLimited  uint64
	tokensIssued  uint64
	denied        uint64
}

type routeCode struct {
	route string
	code  int
}

type histogram struct {
	counts [len(durationBuckets)]uint64
	count  uint64
	sum    float64
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{requests: map[routeCode]uint64{}, durations: map[string]*histogram{}}
}

// observe records a request. A hijacked connection (a WebSocket) is counted
// but its lifetime is not a request duration.
func (m *httpMetrics) observe(route string, code int, d time.Duration, hijacked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[routeCode{route, code}]++
	if hijacked {
		return
	}
	h := m.durations[route]
	if h == nil {
		h = &histogram{}
		m.durations[route] = h
	}
	sec := d.Seconds()
	for i, le := range durationBuckets {
		if sec <= le {
			h.counts[i]++
		}
	}
	h.count++
	h.sum += sec
}

func (m *httpMetrics) loginFailed() {
	m.mu.Lock()
	m.loginFailures++
	m.mu.Unlock()
}

func (m *httpMetrics) tokenIssued() {
	m.mu.Lock()
	m.tokensIssued++
	m.mu.Unlock()
}

func (m *httpMetrics) accessDenied() {
	m.mu.Lock()
	m.denied++
	m.mu.Unlock()
}

func (m *httpMetrics) loginRateLimited() {
	m.mu.Lock()
	m.loginLimited++
	m.mu.Unlock()
}

// write writes the metrics in the Prometheus text exposition format.
func (m *httpMetrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bw := bufio.NewWriter(w)
	defer bw.Flush()

	fmt.Fprintln(bw, "# HELP tally_http_requests_total HTTP requests served, by route pattern and status code.")
	fmt.Fprintln(bw, "# TYPE tally_http_requests_total counter")
	keys := make([]routeCode, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeCode) int {
		if c := strings.Compare(a.route, b.route); c != 0 {
			return c
		}
		return a.code - b.code
	})
	for _, k := range keys {
		fmt.Fprintf(bw, "tally_http_requests_total{route=%s,code=\"%d\"} %d\n", quoteLabel(k.route), k.code, m.requests[k])
	}

	fmt.Fprintln(bw, "# HELP tally_http_request_duration_seconds Time to serve an HTTP request, by route pattern.")
	fmt.Fprintln(bw, "# TYPE tally_http_request_duration_seconds histogram")
	routes := make([]string, 0, len(m.durations))
	for r := range m.durations {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	for _, r := range routes {
		h := m.durations[r]
		q := quoteLabel(r)
		for i, le := range durationBuckets {
			fmt.Fprintf(bw, "tally_http_request_duration_seconds_bucket{route=%s,le=\"%s\"} %d\n", q, formatFloat(le), h.counts[i])
		}
		fmt.Fprintf(bw, "tally_http_request_duration_seconds_bucket{route=%s,le=\"+Inf\"} %d\n", q, h.count)
		fmt.Fprintf(bw, "tally_http_request_duration_seconds_sum{route=%s} %s\n", q, formatFloat(h.sum))
		fmt.Fprintf(bw, "tally_http_request_duration_seconds_count{route=%s} %d\n", q, h.count)
	}

	fmt.Fprintln(bw, "# HELP tally_http_login_failures_total Logins refused for a wrong user name or password.")
	fmt.Fprintln(bw, "# TYPE tally_http_login_failures_total counter")
	fmt.Fprintf(bw, "tally_http_login_failures_total %d\n", m.loginFailures)
	fmt.Fprintln(bw, "# HELP tally_http_login_rate_limited_total Logins refused because the address or the user failed too often.")
	fmt.Fprintln(bw, "# TYPE tally_http_login_rate_limited_total counter")
	fmt.Fprintf(bw, "tally_http_login_rate_limited_total %d\n", m.loginLimited)
	fmt.Fprintln(bw, "# HELP tally_http_tokens_issued_total Administrator tokens issued at login.")
	fmt.Fprintln(bw, "# TYPE tally_http_tokens_issued_total counter")
	fmt.Fprintf(bw, "tally_http_tokens_issued_total %d\n", m.tokensIssued)
	fmt.Fprintln(bw, "# HELP tally_http_access_denied_total Requests refused because the user lacks the route's role.")
	fmt.Fprintln(bw, "# TYPE tally_http_access_denied_total counter")
	fmt.Fprintf(bw, "tally_http_access_denied_total %d\n", m.denied)
}

// quoteLabel writes a label value quoted and escaped as the exposition
// format wants.
func quoteLabel(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// recorder is the ResponseWriter the server hands on: it remembers the
// status for the metrics and still lets a WebSocket handler hijack the
// connection.
type recorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.ResponseWriter.Write(b)
}

// Flush passes a flush on when the underlying writer can.
func (rw *recorder) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		f.Flush()
	}
}

// Hijack hands the connection over, for WebSocket upgrades.
func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rw.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("the response writer cannot be hijacked")
	}
	c, brw, err := h.Hijack()
	if err == nil {
		rw.hijacked = true
		if rw.status == 0 {
			rw.status = http.StatusSwitchingProtocols
		}
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
