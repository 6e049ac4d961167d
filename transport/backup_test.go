package transport

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
)

func TestDatabaseBackupAndRestore(t *testing.T) {
	e := newTestEnv(t)
	e.store.mustApply(t, &core.LoadRights{Source: "shop", Sequence: 1,
		Lines: []core.FeatureLine{{ID: "shop-cad", Name: "press", Version: version.MustParse("1.0"), Count: 5}}})

	r := e.do("GET", "/api/v1/backup", "", "", true)
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Disposition"), databaseBackupFile) {
		t.Fatalf("backup: %d %s", r.status, r.header)
	}
	backup := string(r.body)
	if !strings.Contains(e.logs.String(), "database backed up") {
		t.Errorf("the backup was not logged:\n%s", e.logs)
	}

	// Changes after the backup go away with the restore.
	e.store.mustApply(t, &core.LoadRights{Source: "shop", Sequence: 2,
		Lines: []core.FeatureLine{{ID: "shop-cad", Name: "press", Version: version.MustParse("1.0"), Count: 50}}})
	e.wantRefused(t, "POST", "/api/v1/backup/restore", "application/octet-stream", backup[:len(backup)/2], http.StatusBadRequest, "invalid_snapshot")
	e.wantRefused(t, "POST", "/api/v1/backup/restore", "application/octet-stream", "", http.StatusBadRequest, "invalid_snapshot")
	e.wantRefused(t, "POST", "/api/v1/backup/restore", "text/plain", backup, http.StatusUnsupportedMediaType, "unsupported_media_type")

	if r := e.do("POST", "/api/v1/backup/restore", "application/octet-stream", backup, true); r.status != http.StatusNoContent {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	var features struct {
		Items []core.FeatureSummary `json:"items"`
	}
	e.do("GET", "/api/v1/features", "", "", true).json(t, &features)
	total := int64(-1)
	for _, f := range features.Items {
		if f.Name == "press" {
			total = f.Total
		}
	}
	if total != 5 {
		t.Fatalf("after restore: %+v", features.Items)
	}
	var audit struct {
		Items []core.AuditRecord `json:"items"`
	}
	e.do("GET", "/api/v1/audit", "", "", true).json(t, &audit)
	if n := len(audit.Items); n == 0 || audit.Items[n-1].Action != "restoreBackup" || audit.Items[n-1].User != "admin" {
		t.Fatalf("audit after restore: %+v", audit.Items)
	}
}
