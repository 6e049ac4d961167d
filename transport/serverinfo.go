package transport

import (
	"encoding/pem"
	"net/http"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/licensingid"
)

// GET /api/v1/server: what the Properties view shows under General, for
// this node. Health says the same in part to anyone; this route needs a
// login because it shows the machine's hostids.

// serverInfo answers GET /api/v1/server.
type serverInfo struct {
	Version string `json:"version"`
	// Build says what was built beyond the version (a VCS revision, the
	// Go release and platform); left out when unknown.
	Build string `json:"build,omitempty"`
	Node  string `json:"node"`
	// ClusterID is the fingerprint of the cluster CA in the replicated
	// state, the same on every member; "" on a node that runs alone.
	ClusterID string `json:"clusterId"`
	// Status is "running" and the node's role: "running (leader)" or
	// "running (follower)".
	Status  string         `json:"status"`
	Leader  bool           `json:"leader"`
	HostIDs []serverHostID `json:"hostIds"`
	// Fingerprint is the main licensing ID's, as health shows it.
	Fingerprint string `json:"fingerprint"`
}

// serverHostID is a hostid of the machine; InUse marks the one the server
// is known by (Config.HostIDs says which).
type serverHostID struct {
	Type  hostid.Type `json:"type"`
	Value string      `json:"value"`
	InUse bool        `json:"inUse"`
}

func (s *Server) serverInfo(w http.ResponseWriter, r *http.Request) error {
	var clusterID string
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		if cert, _, ok := st.ClusterCA(); ok {
			clusterID = clusterCAFingerprint(cert)
		}
		return nil
	})
	if err != nil {
		return err
	}
	info := serverInfo{Version: s.cfg.Version, Build: s.cfg.Build, Node: s.cfg.NodeID, ClusterID: clusterID,
		Status: "running (follower)", Leader: s.cfg.Leader(), HostIDs: []serverHostID{},
		Fingerprint: s.cfg.Identity.Fingerprint()}
	if info.Leader {
		info.Status = "running (leader)"
	}
	if s.cfg.HostIDs != nil {
		for i, h := range s.cfg.HostIDs() {
			info.HostIDs = append(info.HostIDs, serverHostID{Type: h.Type, Value: h.Value, InUse: i == 0})
		}
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// clusterCAFingerprint is the fingerprint of the cluster CA's certificate
// (PEM), in the licensing ID's form: the SHA-256 of its DER as
// colon-separated hex pairs. A certificate that is not PEM has none.
func clusterCAFingerprint(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	return licensingid.Fingerprint(block.Bytes)
}
