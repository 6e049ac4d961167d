// Package clustertls owns the trust between the members of a Tally cluster:
// the cluster CA, the node certificates it issues, the mutual TLS that raft
// runs on (TCP 61616), and the join token with which a new node earns its
// certificate. It holds no sockets and no raft state; the raft transport and
// the join endpoint use it.
//
// # Trust model
//
// Bootstrapping a cluster creates its CA: an ECDSA P-256 key and a
// self-signed certificate that may sign node certificates and nothing else
// (path length zero). The CA is the cluster's only root. A peer is a member
// exactly when it shows a certificate the CA signed, with a key it holds: the
// TLS configurations of an Identity trust the CA alone (never the system
// roots), insist on TLS 1.3, and require a certificate from both sides. Host
// names play no part; a node certificate names its node in its common name
// and in the DNS name "<node ID>.node.tally", and Identity.PeerNodeID tells
// the caller which member is on the other end.
//
// A node's private key never leaves the node. A joining node makes its key,
// sends a certificate request for its node ID to a member, and receives its
// certificate and the CA certificate; the member signs with CA.SignNode,
// which takes nothing from the request but the public key and the checked
// node ID. Every member that may admit nodes holds the CA key, so the CA key
// is as sensitive as the cluster itself.
//
// # Join tokens
//
// An operator admits a node with a join token, "tly1.<id>.<secret>", made by
// NewJoinToken. The secret never travels: the cluster stores the token's ID
// and its verifier, HMAC-SHA256(secret, "tally-join-verifier/1"), and the
// joining node derives the same verifier from the token it was given. The
// joiner sends its request with JoinProof(verifier, JoinRequestContext,
// request); the member checks it and answers with JoinProof(verifier,
// JoinResponseContext, answer), which the joiner checks before it trusts the
// CA certificate in the answer. The HTTPS under the join cannot be verified
// (the joiner has no CA yet), so a man in the middle may read both messages,
// but he learns only a certificate request, certificates and two MACs: he
// can neither forge an answer with his own CA nor use the certificate issued
// for a key he does not hold. The answer should contain the request's proof
// so that an old answer cannot be replayed to a new request.
//
// The verifier opens the cluster as well as the token does, so it is kept in
// the replicated state like the cluster's other secrets; what it protects is
// the token's secret, which stays with the operator and the joining node.
//
// # Errors
//
// Refusals wrap one of the sentinels ErrBadCA, ErrBadCSR, ErrBadIdentity,
// ErrBadNodeID, ErrBadToken and ErrUntrustedPeer; callers branch with
// errors.Is. LoadIdentity on a directory without identity files returns an
// error wrapping fs.ErrNotExist.
package clustertls
