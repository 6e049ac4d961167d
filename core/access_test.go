package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/version"
)

const testHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"

// withAdmin is a harness with the administrator "admin".
func withAdmin(t *testing.T) *harness {
	h := newHarness(t)
	h.apply(&CreateUser{Name: "admin", Roles: []Role{RoleAdmin}, PasswordHash: testHash})
	return h
}

func TestRoleText(t *testing.T) {
	for _, name := range []string{"ADMIN", "READ", "RESERVATIONS", "OFFLINE", "DROPDEVICE", "KEYS"} {
		r, err := ParseRole(name)
		if err != nil || r.String() != name {
			t.Fatalf("%s: %v %v", name, r, err)
		}
	}
	for _, bad := range []string{"", "admin", "ROOT", "ADMIN "} {
		if _, err := ParseRole(bad); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	b, _ := json.Marshal([]Role{RoleKeys, RoleRead})
	if string(b) != `["KEYS","READ"]` {
		t.Fatalf("roles JSON %s", b)
	}
	var back []Role
	if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, []Role{RoleKeys, RoleRead}) {
		t.Fatalf("roles back %v %v", back, err)
	}
	if _, err := Role(0).MarshalText(); err == nil {
		t.Fatal("role 0 marshals")
	}
}

func TestUserHas(t *testing.T) {
	tests := []struct {
		roles []Role
		want  Role
		has   bool
	}{
		{[]Role{RoleAdmin}, RoleKeys, true},
		{[]Role{RoleAdmin}, RoleRead, true},
		{[]Role{RoleRead}, RoleRead, true},
		{[]Role{RoleRead}, RoleReservations, false},
		{[]Role{RoleKeys, RoleOffline}, RoleOffline, true},
		{[]Role{RoleKeys}, RoleRead, false},
		{[]Role{RoleDropDevice}, RoleAdmin, false},
		{nil, RoleRead, false},
	}
	for _, tt := range tests {
		if got := (User{Name: "u", Roles: tt.roles}).Has(tt.want); got != tt.has {
			t.Errorf("%v has %v: %v, want %v", tt.roles, tt.want, got, tt.has)
		}
	}
}

func TestUserCommandsValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Command
		want error
	}{
		{"empty name", &CreateUser{Name: "", Roles: []Role{RoleAdmin}, PasswordHash: testHash}, ErrInvalidUser},
		{"long name", &CreateUser{Name: strings.Repeat("a", 65), Roles: []Role{RoleAdmin}, PasswordHash: testHash}, ErrInvalidUser},
		{"space in name", &CreateUser{Name: "a b", Roles: []Role{RoleAdmin}, PasswordHash: testHash}, ErrInvalidUser},
		{"slash in name", &CreateUser{Name: "a/b", Roles: []Role{RoleAdmin}, PasswordHash: testHash}, ErrInvalidUser},
		{"no roles", &CreateUser{Name: "a", PasswordHash: testHash}, ErrInvalidUser},
		{"bad role", &CreateUser{Name: "a", Roles: []Role{9}, PasswordHash: testHash}, ErrInvalidUser},
		{"empty hash", &CreateUser{Name: "a", Roles: []Role{RoleAdmin}}, ErrInvalidUser},
		{"long hash", &CreateUser{Name: "a", Roles: []Role{RoleAdmin}, PasswordHash: strings.Repeat("h", 513)}, ErrInvalidUser},
		{"control in hash", &CreateUser{Name: "a", Roles: []Role{RoleAdmin}, PasswordHash: "ab\ncd"}, ErrInvalidUser},
		{"roles none", &SetUserRoles{Name: "a"}, ErrInvalidUser},
		{"password empty", &SetPassword{Name: "a"}, ErrInvalidUser},
		{"short token key", &SetTokenKey{Key: make([]byte, 31)}, ErrInvalidCommand},
		{"long token key", &SetTokenKey{Key: make([]byte, 33)}, ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.validate(); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	ok := &CreateUser{Name: "Jane.Doe_1@example-org", Roles: []Role{RoleKeys, RoleRead, RoleKeys}, PasswordHash: testHash}
	if err := ok.validate(); err != nil || !slices.Equal(ok.Roles, []Role{RoleRead, RoleKeys}) {
		t.Fatalf("valid user: %v, roles %v", err, ok.Roles)
	}
}

func TestUserLifecycle(t *testing.T) {
	h := newHarness(t)
	h.apply(&Tick{})
	h.refuse(&CreateUser{Name: "ops", Roles: []Role{RoleRead}, PasswordHash: testHash}, ErrInvalidUser) // first must be ADMIN
	h.apply(&CreateUser{Name: "admin", Roles: []Role{RoleAdmin}, PasswordHash: testHash})
	h.advance(time.Minute)
	h.apply(&CreateUser{Name: "ops", Roles: []Role{RoleReservations, RoleRead}, PasswordHash: "hash-1"})
	h.refuse(&CreateUser{Name: "ops", Roles: []Role{RoleRead}, PasswordHash: testHash}, ErrUserExists)

	users := h.s.Users()
	if len(users) != 2 || users[0].Name != "admin" || users[1].Name != "ops" {
		t.Fatalf("users %+v", users)
	}
	if !slices.Equal(users[1].Roles, []Role{RoleRead, RoleReservations}) || !users[1].Created.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ops %+v", users[1])
	}
	if b, _ := json.Marshal(users); bytes.Contains(b, []byte("hash-1")) || bytes.Contains(b, []byte("argon2")) {
		t.Fatalf("users view shows a hash: %s", b)
	}
	hash, roles, epoch, err := h.s.Credentials("ops")
	if err != nil || hash != "hash-1" || !slices.Equal(roles, []Role{RoleRead, RoleReservations}) || epoch != 0 {
		t.Fatalf("credentials %q %v %d %v", hash, roles, epoch, err)
	}

	h.apply(&Logout{Name: "ops"})
	if _, _, epoch, _ := h.s.Credentials("ops"); epoch != 1 {
		t.Fatalf("epoch after logout %d", epoch)
	}
	h.advance(time.Minute)
	h.apply(&SetPassword{Name: "ops", PasswordHash: "hash-2"})
	u, _ := h.s.User("ops")
	if hash, _, epoch, _ := h.s.Credentials("ops"); hash != "hash-2" || epoch != 1 || !u.PasswordChanged.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("after password change: %q %d %+v", hash, epoch, u)
	}
	h.apply(&SetPassword{Name: "ops", PasswordHash: "hash-3", Revoke: true})
	if _, _, epoch, _ := h.s.Credentials("ops"); epoch != 2 {
		t.Fatalf("revoke did not end tokens: epoch %d", epoch)
	}
	// Adding a role keeps tokens; taking one away ends them.
	h.apply(&SetUserRoles{Name: "ops", Roles: []Role{RoleRead, RoleReservations, RoleKeys}})
	if _, _, epoch, _ := h.s.Credentials("ops"); epoch != 2 {
		t.Fatalf("adding a role changed the epoch to %d", epoch)
	}
	h.apply(&SetUserRoles{Name: "ops", Roles: []Role{RoleKeys}})
	if _, roles, epoch, _ := h.s.Credentials("ops"); epoch != 3 || !slices.Equal(roles, []Role{RoleKeys}) {
		t.Fatalf("removing a role: epoch %d roles %v", epoch, roles)
	}

	h.apply(&DeleteUser{Name: "ops"})
	for _, c := range []Command{
		&DeleteUser{Name: "ops"}, &Logout{Name: "ops"}, &SetPassword{Name: "ops", PasswordHash: "x"},
		&SetUserRoles{Name: "ops", Roles: []Role{RoleRead}},
	} {
		h.refuse(c, ErrUnknownUser)
	}
	if _, err := h.s.User("ops"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("deleted user: %v", err)
	}
	if _, _, _, err := h.s.Credentials("ops"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("deleted user credentials: %v", err)
	}
}

func TestLastAdminStays(t *testing.T) {
	h := withAdmin(t)
	h.refuse(&DeleteUser{Name: "admin"}, ErrLastAdmin)
	h.refuse(&SetUserRoles{Name: "admin", Roles: []Role{RoleRead}}, ErrLastAdmin)
	h.apply(&CreateUser{Name: "second", Roles: []Role{RoleAdmin, RoleKeys}, PasswordHash: testHash})
	h.apply(&SetUserRoles{Name: "admin", Roles: []Role{RoleRead}})
	h.refuse(&SetUserRoles{Name: "second", Roles: []Role{RoleKeys}}, ErrLastAdmin)
	h.refuse(&DeleteUser{Name: "second"}, ErrLastAdmin)
	h.apply(&DeleteUser{Name: "admin"}) // no longer an administrator
	if users := h.s.Users(); len(users) != 1 || !users[0].Has(RoleAdmin) {
		t.Fatalf("users %+v", users)
	}
}

func TestTokenKey(t *testing.T) {
	h := withAdmin(t)
	if h.s.TokenKey() != nil {
		t.Fatal("token key before one is set")
	}
	first := bytes.Repeat([]byte{1}, TokenKeyLen)
	h.apply(&SetTokenKey{Key: first})
	// A second first start keeps the key in force.
	h.apply(&SetTokenKey{Key: bytes.Repeat([]byte{2}, TokenKeyLen)})
	k := h.s.TokenKey()
	if !bytes.Equal(k, first) {
		t.Fatalf("token key %x, want the first", k)
	}
	k[0] = 9 // a copy
	if h.s.TokenKey()[0] != 1 {
		t.Fatal("TokenKey returned the state's own slice")
	}
	h.apply(&SetTokenKey{Key: bytes.Repeat([]byte{3}, TokenKeyLen), Replace: true})
	if h.s.TokenKey()[0] != 3 {
		t.Fatal("replace did not rotate the key")
	}
	back, err := Restore(Config{}, h.snapshot())
	if err != nil || !bytes.Equal(back.TokenKey(), h.s.TokenKey()) || len(back.Users()) != 1 {
		t.Fatalf("restore: %v", err)
	}
}

func TestRestoreRefusesBadUsers(t *testing.T) {
	h := withAdmin(t)
	h.apply(&CreateUser{Name: "ops", Roles: []Role{RoleRead}, PasswordHash: testHash})
	h.apply(&SetTokenKey{Key: bytes.Repeat([]byte{1}, TokenKeyLen)})
	good := h.snapshot()
	damaged := map[string][]byte{
		"no admin":       bytes.Replace(good, []byte(`"roles":["ADMIN"]`), []byte(`"roles":["READ"]`), 1),
		"bad role":       bytes.Replace(good, []byte(`"roles":["ADMIN"]`), []byte(`"roles":["ROOT"]`), 1),
		"no roles":       bytes.Replace(good, []byte(`"roles":["READ"]`), []byte(`"roles":[]`), 1),
		"bad name":       bytes.Replace(good, []byte(`"name":"ops"`), []byte(`"name":"o p"`), 1),
		"twice":          bytes.Replace(good, []byte(`"name":"ops"`), []byte(`"name":"admin"`), 1),
		"empty hash":     bytes.Replace(good, []byte(`"passwordHash":"`+testHash+`"`), []byte(`"passwordHash":""`), 1),
		"short tokenKey": bytes.Replace(good, []byte(`"tokenKey":"AQEB`), []byte(`"tokenKey":"AQ`), 1),
	}
	for name, data := range damaged {
		if bytes.Equal(data, good) {
			t.Fatalf("%s: the damage did not apply", name)
		}
		if _, err := Restore(Config{}, data); !errors.Is(err, ErrInvalidSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// audited wraps c with the actor "admin" from 192.0.2.1.
func audited(c Command) *Audited {
	return &Audited{Actor: Actor{User: "admin", Address: "192.0.2.1:4431"}, Command: c}
}

func TestAuditedRecordsChanges(t *testing.T) {
	h := withAdmin(t)
	h.advance(time.Minute)
	h.apply(audited(&CreateUser{Name: "ops", Roles: []Role{RoleKeys}, PasswordHash: testHash}))
	h.apply(audited(&SetPassword{Name: "ops", PasswordHash: "secret-hash-2", Revoke: true}))
	h.apply(audited(&SetTokenKey{Key: bytes.Repeat([]byte{0xab}, TokenKeyLen)}))
	h.apply(audited(&SetProperty{Name: "server.pageSize", Value: "50"}))
	recs := h.s.Audit(0, 0)
	want := []struct{ action, detail string }{
		{"createUser", "created user ops with roles KEYS"},
		{"setPassword", "changed the password of ops and ended its tokens"},
		{"setTokenKey", "set the token key"},
		{"setProperty", `set server.pageSize to "50"`},
	}
	if len(recs) != len(want) || h.s.AuditCount() != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Seq != uint64(i+1) || r.Action != w.action || r.Detail != w.detail || r.User != "admin" ||
			r.Address != "192.0.2.1:4431" || !r.At.Equal(t0.Add(time.Minute)) || len(r.Hash) != 64 {
			t.Errorf("record %d: %+v, want %s %q", i+1, r, w.action, w.detail)
		}
		if i == 0 && r.Prev != "" || i > 0 && r.Prev != recs[i-1].Hash {
			t.Errorf("record %d links to %q", i+1, r.Prev)
		}
	}
	b, _ := json.Marshal(recs)
	for _, secret := range []string{testHash, "secret-hash-2", "q6ur", "abab"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("audit log shows a secret %q: %s", secret, b)
		}
	}
	if err := h.s.VerifyAudit(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditedRecordsOnlyChanges(t *testing.T) {
	h := withAdmin(t)
	// Refused: nothing is recorded and nothing changes.
	h.refuse(audited(&DeleteUser{Name: "admin"}), ErrLastAdmin)
	h.refuse(audited(&Logout{Name: "nobody"}), ErrUnknownUser)
	// A retry is applied once and recorded once.
	req := h.request(audited(&Logout{Name: "admin"}))
	for range 3 {
		if _, err := h.s.Apply(req); err != nil {
			t.Fatal(err)
		}
	}
	// A command that changes nothing is not recorded.
	h.apply(audited(&SetTokenKey{Key: bytes.Repeat([]byte{1}, TokenKeyLen)}))
	h.apply(audited(&SetTokenKey{Key: bytes.Repeat([]byte{2}, TokenKeyLen)}))
	h.apply(audited(&SetUserRoles{Name: "admin", Roles: []Role{RoleAdmin}}))
	recs := h.s.Audit(0, 0)
	if len(recs) != 2 || recs[0].Action != "logout" || recs[1].Action != "setTokenKey" {
		t.Fatalf("records %+v", recs)
	}
	if _, _, epoch, _ := h.s.Credentials("admin"); epoch != 1 {
		t.Fatalf("retried logout applied %d times", epoch)
	}
}

func TestAuditedRefusesDeviceCommands(t *testing.T) {
	for _, inner := range []Command{
		nil, &Tick{}, &Hello{Device: DeviceInfo{ID: mac(1)}},
		&Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 1},
		&Disconnect{Device: mac(1)}, audited(&Logout{Name: "admin"}),
	} {
		c := audited(inner)
		if err := c.validate(); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("audited %T: %v", inner, err)
		}
	}
	long := &Audited{Actor: Actor{User: strings.Repeat("u", 129)}, Command: &Logout{Name: "admin"}}
	if err := long.validate(); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("long actor: %v", err)
	}
	bad := audited(&Logout{Name: "a b"})
	if err := bad.validate(); !errors.Is(err, ErrInvalidUser) {
		t.Errorf("invalid inner command: %v", err)
	}
}

func TestAuditedCodec(t *testing.T) {
	req := Request{ID: RequestID{Session: 3, Seq: 9}, At: t0, Command: audited(&SetUserRoles{Name: "ops", Roles: []Role{RoleKeys, RoleRead}})}
	b, err := EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := back.Command.(*Audited)
	if !ok || a.Actor != (Actor{User: "admin", Address: "192.0.2.1:4431"}) {
		t.Fatalf("decoded %+v", back.Command)
	}
	if sr, ok := a.Command.(*SetUserRoles); !ok || sr.Name != "ops" || !slices.Equal(sr.Roles, []Role{RoleRead, RoleKeys}) {
		t.Fatalf("inner %+v", a.Command)
	}
	for name, wantErr := range map[string]error{
		"nested":  ErrInvalidCommand,
		"unknown": ErrUnknownCommand,
		"extra":   ErrInvalidCommand,
		"device":  ErrInvalidCommand,
	} {
		body := map[string]string{
			"nested":  `{"actor":{"user":"a"},"type":"audited","command":{"actor":{"user":"a"},"type":"logout","command":{"name":"x"}}}`,
			"unknown": `{"actor":{"user":"a"},"type":"reboot"}`,
			"extra":   `{"actor":{"user":"a"},"type":"logout","command":{"name":"x"},"why":1}`,
			"device":  `{"actor":{"user":"a"},"type":"tick"}`,
		}[name]
		data := `{"session":1,"seq":1,"at":0,"type":"audited","command":` + body + `}`
		if _, err := DecodeRequest([]byte(data)); !errors.Is(err, wantErr) {
			t.Errorf("%s: %v, want %v", name, err, wantErr)
		}
	}
}

func TestAuditPagingAndTampering(t *testing.T) {
	h := withAdmin(t)
	for i := range 10 {
		h.advance(time.Second)
		h.apply(audited(&SetProperty{Name: "server.pageSize", Value: strconv.Itoa(10 + i)}))
	}
	if got := h.s.Audit(3, 4); len(got) != 4 || got[0].Seq != 4 || got[3].Seq != 7 {
		t.Fatalf("page after 3: %+v", got)
	}
	if got := h.s.Audit(9, 5); len(got) != 1 || got[0].Seq != 10 {
		t.Fatalf("last page: %+v", got)
	}
	if got := h.s.Audit(10, 5); len(got) != 0 {
		t.Fatalf("past the end: %+v", got)
	}
	good := h.snapshot()
	// The view is a copy: changing it does not touch the log.
	h.s.Audit(0, 1)[0].Detail = "nothing happened"
	if err := h.s.VerifyAudit(); err != nil {
		t.Fatal(err)
	}

	tampered := map[string]func([]AuditRecord) []AuditRecord{
		"detail changed": func(r []AuditRecord) []AuditRecord { r[4].Detail = "set nothing"; return r },
		"user changed":   func(r []AuditRecord) []AuditRecord { r[0].User = "mallory"; return r },
		"time changed":   func(r []AuditRecord) []AuditRecord { r[2].At = r[2].At.Add(time.Second); return r },
		"record removed": func(r []AuditRecord) []AuditRecord { return slices.Delete(r, 5, 6) },
		"records swapped": func(r []AuditRecord) []AuditRecord {
			r[2], r[3] = r[3], r[2]
			return r
		},
		"rehashed without relinking": func(r []AuditRecord) []AuditRecord {
			r[4].Detail = "x"
			r[4].Hash = r[4].digest()
			return r
		},
		"first has a predecessor": func(r []AuditRecord) []AuditRecord {
			r[0].Prev = r[1].Hash
			r[0].Hash = r[0].digest()
			return r
		},
	}
	for name, damage := range tampered {
		t.Run(name, func(t *testing.T) {
			s, err := Restore(Config{}, good)
			if err != nil {
				t.Fatal(err)
			}
			s.audit = damage(s.audit)
			if err := s.VerifyAudit(); !errors.Is(err, ErrAuditTampered) {
				t.Fatalf("VerifyAudit: %v", err)
			}
			var snap map[string]json.RawMessage
			_ = json.Unmarshal(good, &snap)
			snap["audit"], _ = json.Marshal(s.audit)
			data, _ := json.Marshal(snap)
			if _, err := Restore(Config{}, data); !errors.Is(err, ErrInvalidSnapshot) || !errors.Is(err, ErrAuditTampered) {
				t.Fatalf("restore: %v", err)
			}
		})
	}
}

func TestAuditLogIsBounded(t *testing.T) {
	h := newHarness(t)
	h.s = New(Config{MaxAuditRecords: 20})
	h.apply(&CreateUser{Name: "admin", Roles: []Role{RoleAdmin}, PasswordHash: testHash})
	for range 45 {
		h.apply(audited(&Logout{Name: "admin"}))
	}
	recs := h.s.Audit(0, 0)
	if len(recs) > 20 || recs[len(recs)-1].Seq != 45 || recs[0].Prev == "" {
		t.Fatalf("%d records from %d to %d", len(recs), recs[0].Seq, recs[len(recs)-1].Seq)
	}
	back, err := Restore(Config{MaxAuditRecords: 20}, h.snapshot())
	if err != nil || back.VerifyAudit() != nil || back.AuditCount() != len(recs) {
		t.Fatalf("restore of a trimmed log: %v", err)
	}
}
