package raft

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/tallyhq/tally/raft/clustertls"
)

// FuzzReadFrame: a peer's frames are read with a bound, whatever arrives.
func FuzzReadFrame(f *testing.F) {
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	f.Add(frame([]byte{opApply, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, '{', '}'}))
	f.Add(frame(nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := readFrame(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(body) > maxFrame || len(data) < 4+len(body) {
			t.Fatalf("read a body of %d bytes from %d", len(body), len(data))
		}
	})
}

// FuzzDecodeError: an error from a peer decodes to an error, never a panic.
func FuzzDecodeError(f *testing.F) {
	f.Add(encodeError(ErrJoin))
	f.Add([]byte(`{"message":"m","sentinels":["unknown", "command not applied"]}`))
	f.Add([]byte(`{"sentinels":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := decodeError(data); err == nil {
			t.Fatal("decoded no error")
		}
	})
}

// FuzzCheckJoinResponse: a joining node refuses every answer that is not
// proven with its token and bound to its request.
func FuzzCheckJoinResponse(f *testing.F) {
	token := clustertls.JoinToken{ID: "0123456789abcdef", Secret: bytes.Repeat([]byte{7}, 32)}
	request := []byte(`{"token":"0123456789abcdef","nodeId":"n2","address":"10.0.0.2:61616","csr":""}`)
	sum := sha256.Sum256(request)
	good, _ := json.Marshal(JoinResponse{Request: sum[:], CA: []byte{1}, Certificate: []byte{2}})
	f.Add(good, clustertls.JoinProof(token.Verifier(), clustertls.JoinResponseContext, good))
	f.Add([]byte(`{}`), []byte{})
	f.Fuzz(func(t *testing.T, response, proof []byte) {
		resp, err := CheckJoinResponse(token, request, response, proof)
		if err != nil {
			return
		}
		if !clustertls.CheckJoinProof(token.Verifier(), clustertls.JoinResponseContext, response, proof) || !bytes.Equal(resp.Request, sum[:]) {
			t.Fatal("accepted an answer that is not proven or not for this request")
		}
	})
}
