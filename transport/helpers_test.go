package transport

import (
	"net/http"
	"testing"

	"github.com/tallyhq/tally/core/hostid"
)

func hostidSerial(t testing.TB, v string) hostid.HostID {
	t.Helper()
	h, err := hostid.New(v, hostid.Serial)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// nopHandler stands in for the device WebSocket handler.
type nopHandler struct{}

func (nopHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}
