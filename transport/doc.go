// Package transport serves Tally's HTTPS REST API on port 8443: the routes
// under /api/v1, the OpenAPI document that lists them, /metrics, and the
// mount point of the device WebSocket (/ws/device, whose protocol lives in
// transport/device). It owns the wire: TLS certificates, authentication,
// request decoding, paging, status codes and error bodies. It decides no
// licensing rule; every change is a core command applied through a
// core.Store, and every read copies what it needs out of a core.State.
//
// # Requests and errors
//
// Bodies are JSON (strict: one value, no unknown fields, bounded size)
// except the license model, which is text/plain, and rights files, which
// may also come as application/octet-stream. A wrong Content-Type is 415, a
// body past its limit 413, a wrong method 405 with Allow. Every error is
// {"error":"one line","code":"snake_case"}; errorFor is the one place that
// turns errors into status codes: core's sentinels by errors.Is (invalid
// 400, unknown 404, conflicts 409, a forbidden drop 403, not applied 503),
// refused rights files 400 bad_rights, and anything unknown 500 with a
// generic message and the detail in the log.
//
// # Authentication
//
// POST /api/v1/auth/login with the administrator's user and password
// (compared in constant time) returns a random 32-byte bearer token that
// lives for the property security.tokenDuration. Tokens are kept in this
// node's memory only: a restart or another node of a cluster does not know
// them, and clients log in again. Failed logins are limited per remote
// address (an IPv6 address counts by its /64) by a token bucket of five
// attempts refilled one every twelve seconds; a limited address gets 429
// with Retry-After. When security.enabled is false, requests from a
// loopback address without an Authorization header are let through, as the
// property describes; a token that is presented must still be valid.
// Health, login, the OpenAPI document and /metrics need no token.
//
// # Lists
//
// Paged lists take page (from 1) and pageSize (1 to 1000, default the
// property server.pageSize) and answer {"total","page","pageSize","items"};
// a page past the end has no items.
package transport
