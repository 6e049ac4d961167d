package device

import "testing"

// BenchmarkCapabilityMessages runs a checkout and its return through a
// connection's processing, from the frame read to the signed reply
// queued, without a socket. One op is the checkout and the return.
func BenchmarkCapabilityMessages(b *testing.B) {
	h := fuzzHandler(b)
	h.signer.linger = 0 // one request at a time: nothing to wait for
	c := newConn(h, nil, nil)
	c.process([]byte(`{"type":"hello","id":1,"body":{"protocol":"tally-device/1","hostIds":[{"value":"bench","type":"STRING"}]}}`))
	if q := c.takeQueued(); len(q) != 1 || len(q[0].data) == 0 {
		b.Fatal("no welcome")
	}
	checkout := []byte(`{"type":"capabilityRequest","id":2,"body":{"features":[{"name":"viewer","version":"2.0","count":1}]}}`)
	ret := []byte(`{"type":"return","id":3,"body":{"features":[{"name":"viewer","version":"2.0"}]}}`)
	written := func() { // as the writer does
		for _, msg := range c.takeQueued() {
			if msg.buf != nil {
				msgBuffers.Put(msg.buf)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		c.process(checkout)
		written()
		c.process(ret)
		written()
	}
}
