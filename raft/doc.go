// Package raft keeps Tally's licensing state durable and agreed on: it owns
// the replicated log (hashicorp/raft with raft-boltdb/v2 as log and stable
// store and a file snapshot store in the data directory), the FSM that feeds
// the log to a core.State in order, the group commit that packs many
// concurrent commands into one log entry, linearizable reads, snapshots, and
// the leader's expiry ticks.
//
// A Node implements core.Store. Today it runs as a single-member cluster on
// an in-memory transport: the node bootstraps a one-member configuration the
// first time it starts in an empty data directory and elects itself at once.
//
// # Log entries
//
// A log entry is a batch: one envelope byte (the format version) followed by
// requests, each written as a uvarint length and the bytes of
// core.EncodeRequest. The proposer stamps every request with the node's
// session, an increasing sequence number and the leader's clock, which never
// goes back, so the state machine never reads a clock of its own and a
// replayed request is recognised as a duplicate by core. An entry that cannot
// be read is answered with an error for each request in it and changes
// nothing but the applied index.
//
// # Applied index
//
// The FSM records the index of the last entry it applied and writes it into
// every snapshot beside the state. After a restart the snapshot restores both,
// and entries at or below that index are skipped, so no entry is applied
// twice; Config.Observe is called only for entries applied after it.
//
// # Errors
//
// Apply returns the state's own errors unchanged (they wrap core's
// sentinels); a denial is a result, not an error. Every error that leaves a
// command's fate unknown (not the leader, shutdown, the caller's context
// ending, a raft failure) wraps core.ErrNotApplied: the command may or may
// not have been applied. Read outside leadership fails with an error
// wrapping both ErrNotLeader and core.ErrNotApplied.
package raft
