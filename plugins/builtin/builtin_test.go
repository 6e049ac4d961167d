package builtin

import (
	"context"
	"errors"
	"testing"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		name string // of the connector made; "" for an error
	}{
		{[]string{"dir", "--dir", dir}, "dir"},
		{[]string{"http", "--url", "https://backoffice.example", "--pin", "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"}, "http"},
		{[]string{"http", "--url", "https://backoffice.example", "--attempts", "2", "--try-timeout", "3s"}, "http"},
		{nil, ""},
		{[]string{"ftp"}, ""},
		{[]string{"dir"}, ""},
		{[]string{"dir", "--dir", dir, "extra"}, ""},
		{[]string{"dir", "--no-such-flag"}, ""},
		{[]string{"http", "--url", "http://plain.example"}, ""},
	} {
		c, err := New(tc.args)
		if tc.name == "" {
			if err == nil {
				t.Errorf("New(%q) accepted", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tc.args, err)
			continue
		}
		if d, err := c.Describe(context.Background()); err != nil || d.Name != tc.name {
			t.Errorf("New(%q) made %+v, %v", tc.args, d, err)
		}
	}
	if _, err := New([]string{"ftp"}); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown connector: %v", err)
	}
}
