// Package plugins owns the back-office connector contract: the Connector
// interface, the gRPC service that carries it between tallyd and a connector
// process under hashicorp/go-plugin, and the Host that starts, supervises and
// restarts connector processes.
//
// A connector only moves signed bytes between tallyd and a back office: it
// sends capability requests and usage reports, registers the licensing-ID
// certificate and hands back capability responses. It never decides rights;
// tallyd verifies everything a connector returns. See DESIGN.md beside this
// file for the process model, restarts and orphan prevention.
//
// The built-in connectors live in the subpackages dir (a directory exchange
// for USB-stick workflows) and httpconn (HTTPS to a back office); the
// subpackage builtin serves them from the tallyd binary re-executed as a
// connector process.
package plugins
