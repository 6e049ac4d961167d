package core

import (
	"context"
	"time"
)

// ClusterMember is one server of the cluster as the cluster view shows it:
// its place in the configuration and, when it answered, its own account of
// itself.
type ClusterMember struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	// Reachable says the member answered the node that asked; Error says
	// why not.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// State is the member's raft state (Leader, Follower, Candidate), Leader
	// the leader it follows.
	State        string    `json:"state,omitempty"`
	Leader       string    `json:"leader,omitempty"`
	AppliedIndex uint64    `json:"appliedIndex"`
	LastIndex    uint64    `json:"lastIndex"`
	LastContact  time.Time `json:"lastContact,omitzero"`
	// Info is what the member says of itself beyond raft (the Info* keys).
	Info map[string]string `json:"info,omitempty"`
	// Level is the highest state level the member's code applies (see
	// Level); 1 for a member of a release that does not say, 0 (left out)
	// for one that did not answer.
	Level int `json:"level,omitempty"`
}

// Keys of ClusterMember.Info.
const (
	// InfoHost is the member's host name.
	InfoHost = "host"
	// InfoLocalID and InfoLocalIDDisplay are the fingerprint and display
	// string of the member's local licensing ID.
	InfoLocalID        = "localLicensingId"
	InfoLocalIDDisplay = "localLicensingIdDisplay"
	// InfoSigningID is the fingerprint of the licensing ID the member
	// signs with: the main one once it has it.
	InfoSigningID = "signingLicensingId"
)

// Cluster is what the API asks of the replication layer beyond Store: the
// members and their health, membership changes, and admitting a node that
// presents a join token. The raft package implements it.
type Cluster interface {
	// ClusterMembers asks every member for its status.
	ClusterMembers(ctx context.Context) ([]ClusterMember, error)
	// RemoveServer removes a member. Removing a stranger or the last voter
	// is refused with an error that wraps ErrInvalidCommand.
	RemoveServer(ctx context.Context, id string) error
	// Admit answers a join request (its bytes and proof, as the joining
	// node sent them) with the response bytes and their proof.
	Admit(ctx context.Context, request, proof []byte, remote string) (response, responseProof []byte, err error)
	// NewJoinToken makes a join token: the string for the operator, and
	// the ID and verifier CreateJoinToken keeps.
	NewJoinToken() (token, id string, verifier []byte, err error)
}
