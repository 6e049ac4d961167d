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

// TestSealedDatabaseBackup: POST /api/v1/backup seals the backup under the
// password; a sealed backup restores only with its password in the
// Tally-Backup-Password header, and every refusal changes nothing.
func TestSealedDatabaseBackup(t *testing.T) {
	e := newTestEnv(t)
	e.store.mustApply(t, &core.LoadRights{Source: "shop", Sequence: 1,
		Lines: []core.FeatureLine{{ID: "shop-cad", Name: "press", Version: version.MustParse("1.0"), Count: 5}}})
	const ct = "application/json"
	wantError(t, e.do("POST", "/api/v1/backup", ct, `{"password":"short"}`, true), http.StatusBadRequest, "weak_password")
	wantError(t, e.do("POST", "/api/v1/backup", ct, `{}`, true), http.StatusBadRequest, "bad_json")

	r := e.do("POST", "/api/v1/backup", ct, `{"password":"backup password"}`, true)
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Disposition"), sealedBackupFile) {
		t.Fatalf("sealed backup: %d %s %s", r.status, r.header, r.body)
	}
	sealed := string(r.body)
	if !core.IsSealedBackup(r.body) || strings.Contains(sealed, "press") {
		t.Fatal("the backup is not sealed")
	}
	plain := string(e.do("GET", "/api/v1/backup", "", "", true).body)

	e.store.mustApply(t, &core.LoadRights{Source: "shop", Sequence: 2,
		Lines: []core.FeatureLine{{ID: "shop-cad", Name: "press", Version: version.MustParse("1.0"), Count: 50}}})
	const bin = "application/octet-stream"
	e.wantRefused(t, "POST", "/api/v1/backup/restore", bin, sealed, http.StatusBadRequest, "sealed_backup")
	e.header = http.Header{backupPasswordHeader: {"a wrong password"}}
	e.wantRefused(t, "POST", "/api/v1/backup/restore", bin, sealed, http.StatusBadRequest, "wrong_password")
	e.header = http.Header{backupPasswordHeader: {"backup password"}}
	e.wantRefused(t, "POST", "/api/v1/backup/restore", bin, sealed[:len(sealed)-1], http.StatusBadRequest, "damaged_backup")
	e.wantRefused(t, "POST", "/api/v1/backup/restore", bin, plain, http.StatusBadRequest, "invalid_snapshot")
	if r := e.do("POST", "/api/v1/backup/restore", bin, sealed, true); r.status != http.StatusNoContent {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	e.header = nil
	var features struct {
		Items []core.FeatureSummary `json:"items"`
	}
	e.do("GET", "/api/v1/features", "", "", true).json(t, &features)
	for _, f := range features.Items {
		if f.Name == "press" && f.Total != 5 {
			t.Fatalf("after restore: %+v", f)
		}
	}
}
