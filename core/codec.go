package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tallyhq/tally/core/strictjson"
)

// MaxRequestBytes bounds an encoded request.
const MaxRequestBytes = 32 << 20

// wireRequest is the encoded form of a Request: JSON with the command's
// type beside its body, and the time in Unix nanoseconds so that every node
// reads back exactly the same instant.
type wireRequest struct {
	Session SessionID       `json:"session"`
	Seq     uint64          `json:"seq"`
	At      int64           `json:"at"`
	Type    string          `json:"type"`
	Command json.RawMessage `json:"command,omitempty"`
}

// EncodeRequest writes a request in the form DecodeRequest reads.
func EncodeRequest(r Request) ([]byte, error) {
	if r.Command == nil {
		return nil, fmt.Errorf("%w: no command", ErrInvalidCommand)
	}
	if c, ok := r.Command.(*Checkout); ok {
		if b, ok := appendCheckoutRequest(make([]byte, 0, 256), r, c); ok {
			return b, nil
		}
	}
	return encodeRequestJSON(r)
}

// encodeRequestJSON is EncodeRequest through encoding/json.
func encodeRequestJSON(r Request) ([]byte, error) {
	body, err := json.Marshal(r.Command)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", r.Command.Type(), err)
	}
	return json.Marshal(wireRequest{
		Session: r.ID.Session, Seq: r.ID.Seq, At: r.At.UnixNano(), Type: r.Command.Type(), Command: body,
	})
}

// DecodeRequest reads an encoded request. Unknown fields, an unknown command
// type and trailing data are refused; the command is validated on its own
// (Apply checks it against the state).
func DecodeRequest(data []byte) (Request, error) {
	if len(data) > MaxRequestBytes {
		return Request{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidCommand, len(data), MaxRequestBytes)
	}
	if r, err, ok := decodeCheckoutRequest(data); ok {
		return r, err
	}
	return decodeRequestJSON(data)
}

// decodeRequestJSON is DecodeRequest through encoding/json.
func decodeRequestJSON(data []byte) (Request, error) {
	var w wireRequest
	if err := strictjson.Unmarshal(data, &w); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	c, ok := newCommand(w.Type)
	if !ok {
		return Request{}, fmt.Errorf("%w %q", ErrUnknownCommand, w.Type)
	}
	if len(w.Command) > 0 && !bytes.Equal(w.Command, []byte("null")) {
		if err := strictjson.Unmarshal(w.Command, c); err != nil {
			return Request{}, fmt.Errorf("%w: %s: %w", ErrInvalidCommand, w.Type, err)
		}
	}
	if err := c.validate(); err != nil {
		return Request{}, err
	}
	r := Request{ID: RequestID{Session: w.Session, Seq: w.Seq}, At: time.Unix(0, w.At).UTC(), Command: c}
	if r.ID.Session == 0 || r.ID.Seq == 0 {
		return Request{}, errZeroRequestID()
	}
	return r, nil
}

func errZeroRequestID() error {
	return fmt.Errorf("%w: session and sequence must be non-zero", ErrInvalidRequest)
}
