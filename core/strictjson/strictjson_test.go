package strictjson

import (
	"errors"
	"testing"
)

func TestUnmarshal(t *testing.T) {
	type target struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	var v target
	if err := Unmarshal([]byte(` {"a":1,"b":"x"} `), &v); err != nil || v != (target{1, "x"}) {
		t.Fatalf("good input: %+v %v", v, err)
	}
	for _, bad := range []string{``, `{`, `{"a":1,"c":2}`, `{"a":"1"}`, `{"a":1} {"a":2}`, `{"a":1} x`, `[1]`} {
		if err := Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if err := Unmarshal([]byte(`{"a":1}{}`), &v); !errors.Is(err, ErrTrailingData) {
		t.Errorf("trailing object: %v", err)
	}
}
