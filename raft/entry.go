package raft

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/tallyhq/tally/core"
)

// entryFormat is the first byte of every log entry this package writes.
const entryFormat = 1

// maxEntryBytes bounds one log entry; a batch closes before it would pass
// this. One request may fill an entry on its own (core.MaxRequestBytes).
const maxEntryBytes = core.MaxRequestBytes + 1024

// appendRequest adds one encoded request to an entry being built. An empty
// entry gets its format byte first.
func appendRequest(entry, req []byte) []byte {
	if len(entry) == 0 {
		entry = append(entry, entryFormat)
	}
	entry = binary.AppendUvarint(entry, uint64(len(req)))
	return append(entry, req...)
}

// splitEntry returns the encoded requests of an entry, sharing its memory.
// It fails when the entry is not of this format, is cut short, or writes a
// length in more bytes than it needs (so an entry has one spelling).
func splitEntry(entry []byte, into [][]byte) ([][]byte, error) {
	into = into[:0]
	if len(entry) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformedEntry)
	}
	if entry[0] != entryFormat {
		return nil, fmt.Errorf("%w: format %d, this server reads %d", ErrMalformedEntry, entry[0], entryFormat)
	}
	rest := entry[1:]
	for len(rest) > 0 {
		if len(into) >= maxMaxBatch {
			return nil, fmt.Errorf("%w: more than %d requests", ErrMalformedEntry, maxMaxBatch)
		}
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return nil, fmt.Errorf("%w: request %d is cut short", ErrMalformedEntry, len(into)+1)
		}
		if w != max(1, (bits.Len64(n)+6)/7) {
			return nil, fmt.Errorf("%w: request %d has an overlong length", ErrMalformedEntry, len(into)+1)
		}
		rest = rest[w:]
		into = append(into, rest[:n:n])
		rest = rest[n:]
	}
	if len(into) == 0 {
		return nil, fmt.Errorf("%w: no requests", ErrMalformedEntry)
	}
	return into, nil
}
