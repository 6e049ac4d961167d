// Package strictjson decodes JSON the way every input to Tally is read: one
// value, no fields the target does not know, nothing after the value.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailingData is returned when something follows the JSON value.
var ErrTrailingData = errors.New("data after the JSON value")

// Unmarshal decodes exactly one JSON value from data into v, refusing
// fields v has no place for and anything after the value.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailingData
	}
	return nil
}
