package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
)

// oneTimeKeys makes n one-time keys "k1".."kn" with secrets "secret-1".."secret-n".
func oneTimeKeys(n int) *CreateKeys {
	c := &CreateKeys{KeyType: KeyOneTime}
	for i := 1; i <= n; i++ {
		c.Keys = append(c.Keys, NewKey{ID: fmt.Sprintf("k%d", i), Secret: fmt.Sprintf("secret-%d", i)})
	}
	return c
}

func pubKey(n int) []byte { return []byte(fmt.Sprintf("public-key-of-device-%d", n)) }

func onboard(n int, secret string) *Onboard {
	return &Onboard{Device: DeviceInfo{ID: mac(n), Type: DevicePhysical, Hostname: fmt.Sprintf("host-%d", n)},
		Secret: secret, PublicKey: pubKey(n), Address: "198.51.100.9:7000"}
}

func TestKeyText(t *testing.T) {
	for _, tt := range []struct {
		text string
		m    interface{ MarshalText() ([]byte, error) }
	}{{"ONE_TIME", KeyOneTime}, {"MASS", KeyMass}, {"ACTIVE", KeyActive}, {"INACTIVE", KeyInactive}, {"USED", KeyUsed}} {
		if b, err := tt.m.MarshalText(); err != nil || string(b) != tt.text {
			t.Errorf("%v: %s %v", tt.m, b, err)
		}
	}
	if k, err := ParseKeyType("MASS"); err != nil || k != KeyMass {
		t.Fatal(k, err)
	}
	if st, err := ParseKeyState("USED"); err != nil || st != KeyUsed {
		t.Fatal(st, err)
	}
	if _, err := ParseKeyType("once"); !errors.Is(err, ErrInvalidKey) {
		t.Fatal(err)
	}
	if _, err := ParseKeyState("gone"); !errors.Is(err, ErrInvalidKey) {
		t.Fatal(err)
	}
}

func TestKeyCommandsValidate(t *testing.T) {
	key := func(id, secret string) *CreateKeys {
		return &CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: id, Secret: secret}}}
	}
	tooMany := oneTimeKeys(MaxKeysPerCommand + 1)
	tests := []struct {
		name string
		c    Command
		want error
	}{
		{"no type", &CreateKeys{Keys: []NewKey{{ID: "a", Secret: "12345678"}}}, ErrInvalidKey},
		{"no keys", &CreateKeys{KeyType: KeyOneTime}, ErrInvalidKey},
		{"too many keys", tooMany, ErrInvalidKey},
		{"empty id", key("", "12345678"), ErrInvalidKey},
		{"id with space", key("a b", "12345678"), ErrInvalidKey},
		{"long id", key(strings.Repeat("i", 65), "12345678"), ErrInvalidKey},
		{"short secret", key("a", "1234567"), ErrInvalidKey},
		{"long secret", key("a", strings.Repeat("s", 129)), ErrInvalidKey},
		{"control in secret", key("a", "1234\x005678"), ErrInvalidKey},
		{"non-ASCII secret", key("a", "pässwörter"), ErrInvalidKey},
		{"leading space", key("a", " 12345678"), ErrInvalidKey},
		{"long description", &CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "a", Secret: "12345678", Description: strings.Repeat("d", 257)}}}, ErrInvalidKey},
		{"id twice", &CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "a", Secret: "12345678"}, {ID: "a", Secret: "87654321"}}}, ErrInvalidKey},
		{"secret twice", &CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "a", Secret: "12345678"}, {ID: "b", Secret: "12345678"}}}, ErrDuplicateKeySecret},
		{"activate bad id", &SetKeyActive{ID: "a/b"}, ErrInvalidKey},
		{"describe control", &SetKeyDescription{ID: "a", Description: "x\ty"}, ErrInvalidKey},
		{"delete empty id", &DeleteKey{}, ErrInvalidKey},
		{"onboard short secret", &Onboard{Device: DeviceInfo{ID: mac(1)}, Secret: "short", PublicKey: []byte{1}}, ErrUnknownKey},
		{"onboard no public key", &Onboard{Device: DeviceInfo{ID: mac(1)}, Secret: "12345678"}, ErrInvalidDevice},
		{"onboard big public key", &Onboard{Device: DeviceInfo{ID: mac(1)}, Secret: "12345678", PublicKey: make([]byte, 1025)}, ErrInvalidDevice},
		{"onboard bad device", &Onboard{Device: DeviceInfo{ID: hostid.HostID{Value: "zz", Type: hostid.Ethernet}}, Secret: "12345678", PublicKey: []byte{1}}, ErrInvalidDevice},
		{"empty client key", &SetClientKey{}, ErrInvalidClientKey},
		{"big client key", &SetClientKey{DER: make([]byte, 4097)}, ErrInvalidClientKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.validate()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "12345678") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
	if err := oneTimeKeys(MaxKeysPerCommand).validate(); err != nil {
		t.Fatalf("%d keys: %v", MaxKeysPerCommand, err)
	}
	typed := key("typed", "Our Site Password 2026!")
	if err := typed.validate(); err != nil {
		t.Fatalf("a typed mass-key password: %v", err)
	}
}

func TestNoTwoKeysShareASecret(t *testing.T) {
	h := withAdmin(t)
	h.apply(oneTimeKeys(3))
	h.apply(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "site", Secret: "Our Site Password"}}})
	h.apply(onboard(1, "secret-1")) // a used key keeps its secret
	for _, c := range []*CreateKeys{
		{KeyType: KeyMass, Keys: []NewKey{{ID: "m2", Secret: "Our Site Password"}}},
		{KeyType: KeyMass, Keys: []NewKey{{ID: "m3", Secret: "secret-2"}}},
		{KeyType: KeyOneTime, Keys: []NewKey{{ID: "new", Secret: "fresh-secret"}, {ID: "new2", Secret: "secret-1"}}},
	} {
		err := h.refuse(c, ErrDuplicateKeySecret)
		if strings.Contains(err.Error(), "secret-") || strings.Contains(err.Error(), "Password") {
			t.Fatalf("error shows the secret: %v", err)
		}
	}
	h.refuse(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "k2", Secret: "another-secret"}}}, ErrKeyExists)
	if _, err := h.s.Key("new"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a refused command created a key: %v", err)
	}
	// Once deleted, a key's secret is free again.
	h.apply(&DeleteKey{ID: "site"})
	h.apply(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "site2", Secret: "Our Site Password"}}})
}

func TestKeyLifecycleAndFilters(t *testing.T) {
	h := withAdmin(t)
	h.apply(oneTimeKeys(3))
	h.advance(time.Minute)
	h.apply(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "site", Secret: "Our Site Password", Description: "Pune lab"}}})
	h.apply(&SetKeyActive{ID: "k2", Active: false})
	h.apply(&SetKeyDescription{ID: "k3", Description: "for the kiosk"})
	h.apply(onboard(1, "secret-1"))
	h.refuse(&SetKeyActive{ID: "k1", Active: false}, ErrKeyUsed)
	h.refuse(&SetKeyActive{ID: "nope", Active: true}, ErrUnknownKey)
	h.refuse(&SetKeyDescription{ID: "nope"}, ErrUnknownKey)
	h.refuse(&DeleteKey{ID: "nope"}, ErrUnknownKey)

	ids := func(f KeyFilter) string {
		var out []string
		for _, k := range h.s.Keys(f) {
			out = append(out, k.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		f    KeyFilter
		want string
	}{
		{KeyFilter{}, "k1,k2,k3,site"},
		{KeyFilter{Type: KeyOneTime}, "k1,k2,k3"},
		{KeyFilter{Type: KeyMass}, "site"},
		{KeyFilter{State: KeyActive}, "k3,site"},
		{KeyFilter{State: KeyInactive}, "k2"},
		{KeyFilter{State: KeyUsed}, "k1"},
		{KeyFilter{Type: KeyMass, State: KeyUsed}, ""},
	} {
		if got := ids(tt.f); got != tt.want {
			t.Errorf("filter %+v: %s, want %s", tt.f, got, tt.want)
		}
	}
	k1, _ := h.s.Key("k1")
	if k1.State != KeyUsed || k1.UsedBy != mac(1) || !k1.UsedAt.Equal(h.now) || k1.Uses != 1 || k1.Secret != "secret-1" {
		t.Fatalf("k1 %+v", k1)
	}
	k3, _ := h.s.Key("k3")
	if k3.Description != "for the kiosk" || !k3.Created.Equal(t0) || k3.Type != KeyOneTime {
		t.Fatalf("k3 %+v", k3)
	}
	h.apply(&SetKeyActive{ID: "k2", Active: true})
	h.apply(&DeleteKey{ID: "k3"})
	if got := ids(KeyFilter{State: KeyActive}); got != "k2,site" {
		t.Fatalf("after changes: %s", got)
	}
}

func TestOnboarding(t *testing.T) {
	h := withAdmin(t)
	h.apply(oneTimeKeys(2))
	h.apply(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "site", Secret: "Our Site Password"}}})

	res := h.apply(onboard(1, "secret-1"))
	if res.Onboarded != mac(1) {
		t.Fatalf("result %+v", res)
	}
	if cred, ok := h.s.DeviceCredential(mac(1)); !ok || !bytes.Equal(cred, pubKey(1)) {
		t.Fatalf("credential %q %v", cred, ok)
	}
	if d, err := h.s.Device(mac(1)); err != nil || d.Info.Hostname != "host-1" {
		t.Fatalf("device not recorded: %+v %v", d, err)
	}
	// Another device with the used key, or the same device with another
	// public key, is refused.
	h.refuse(onboard(2, "secret-1"), ErrKeyUsed)
	stolen := onboard(1, "secret-1")
	stolen.PublicKey = pubKey(66)
	h.refuse(stolen, ErrKeyUsed)
	// The same device asking again with the same key (a lost answer) is
	// told it is onboarded; nothing changes and nothing is recorded.
	records := h.s.AuditCount()
	if again := h.apply(onboard(1, "secret-1")); again.Onboarded != mac(1) || h.s.AuditCount() != records {
		t.Fatalf("retry: %+v, %d records", again, h.s.AuditCount())
	}

	h.apply(&SetKeyActive{ID: "k2", Active: false})
	h.refuse(onboard(2, "secret-2"), ErrKeyInactive)
	h.apply(&DeleteKey{ID: "k2"})
	h.refuse(onboard(2, "secret-2"), ErrUnknownKey)
	h.refuse(onboard(2, "no-such-secret"), ErrUnknownKey)

	// A mass key onboards many and counts them.
	for n := 2; n <= 4; n++ {
		h.advance(time.Second)
		h.apply(onboard(n, "Our Site Password"))
	}
	site, _ := h.s.Key("site")
	if site.Uses != 3 || site.UsedBy != mac(4) || site.State != KeyActive {
		t.Fatalf("mass key %+v", site)
	}
	// An onboarded device cannot take another credential, even with a
	// usable key; with its own public key it is told it is onboarded.
	again := onboard(1, "Our Site Password")
	again.PublicKey = []byte("a new key pair")
	h.refuse(again, ErrAlreadyOnboarded)
	records = h.s.AuditCount()
	if res := h.apply(onboard(1, "Our Site Password")); res.Onboarded != mac(1) || h.s.AuditCount() != records {
		t.Fatalf("same key pair again: %+v", res)
	}
	if site, _ := h.s.Key("site"); site.Uses != 3 {
		t.Fatalf("a repeated onboarding counted as a use: %+v", site)
	}
	// Dropping a device forgets its credential; its one-time key stays used.
	h.apply(&DropDevice{Device: mac(1)})
	if _, ok := h.s.DeviceCredential(mac(1)); ok {
		t.Fatal("dropped device keeps a credential")
	}
	h.refuse(onboard(1, "secret-1"), ErrKeyUsed)

	recs := h.s.Audit(0, 0)
	if len(recs) != 4 {
		t.Fatalf("%d audit records, want 4 onboardings: %+v", len(recs), recs)
	}
	first := recs[0]
	if first.User != "device:"+mac(1).String() || first.Action != "onboard" || first.Address != "198.51.100.9:7000" ||
		first.Detail != "onboarded device "+mac(1).String()+" with one-time key k1" {
		t.Fatalf("record %+v", first)
	}
	if b, _ := json.Marshal(recs); bytes.Contains(b, []byte("secret-")) || bytes.Contains(b, []byte("Site Password")) {
		t.Fatalf("audit log shows a secret: %s", b)
	}
}

func TestOnboardRetryIsDuplicate(t *testing.T) {
	h := withAdmin(t)
	h.apply(oneTimeKeys(1))
	req := h.request(onboard(1, "secret-1"))
	for i := range 2 {
		res, err := h.s.Apply(req)
		if err != nil || res.Onboarded != mac(1) || res.Duplicate != (i == 1) {
			t.Fatalf("try %d: %+v %v", i, res, err)
		}
	}
	if err := audited(onboard(2, "secret-1")).validate(); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("audited onboard: %v", err)
	}
}

// TestOneTimeKeysRace has 200 devices race for 50 one-time keys, four for
// each key, in a random order: exactly 50 onboard, each key once, and the
// audit log shows each use.
func TestOneTimeKeysRace(t *testing.T) {
	h := withAdmin(t)
	h.apply(oneTimeKeys(50))
	r := rand.New(rand.NewPCG(4, 4))
	order := r.Perm(200)
	onboarded := map[string]hostid.HostID{}
	for _, n := range order {
		secret := fmt.Sprintf("secret-%d", 1+n%50)
		res, err := h.s.Apply(h.request(onboard(n+1, secret)))
		switch {
		case err == nil:
			if prev, dup := onboarded[secret]; dup {
				t.Fatalf("%s onboarded %s and %s", secret, prev, res.Onboarded)
			}
			onboarded[secret] = res.Onboarded
		case !errors.Is(err, ErrKeyUsed):
			t.Fatalf("device %d: %v", n+1, err)
		}
	}
	if len(onboarded) != 50 || len(h.s.Keys(KeyFilter{State: KeyUsed})) != 50 {
		t.Fatalf("%d onboarded", len(onboarded))
	}
	uses := map[string]int{}
	for _, rec := range h.s.Audit(0, 0) {
		if rec.Action == "onboard" {
			uses[rec.Detail[strings.LastIndex(rec.Detail, " ")+1:]]++
		}
	}
	for i := 1; i <= 50; i++ {
		if uses[fmt.Sprintf("k%d", i)] != 1 {
			t.Fatalf("key k%d appears %d times in the audit log", i, uses[fmt.Sprintf("k%d", i)])
		}
	}
	if err := h.s.VerifyAudit(); err != nil {
		t.Fatal(err)
	}
}

func TestRequireOnboarding(t *testing.T) {
	h := withAdmin(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 5))
	h.apply(oneTimeKeys(1))
	plain := h.hello(1)
	h.granted(plain, "cad", "1.0", 2)
	if h.s.RequireOnboarding() {
		t.Fatal("policy on by default")
	}
	h.apply(&SetProperty{Name: "security.requireOnboarding", Value: "true"})
	if !h.s.RequireOnboarding() {
		t.Fatal("policy not read")
	}
	h.denied(plain, "cad", "1.0", 3, DenyNotOnboarded)
	h.denied(plain, "cad", "1.0", 2, DenyNotOnboarded) // no renewal either
	h.granted(plain, "cad", "1.0", 1)                  // returning is allowed
	h.granted(plain, "cad", "1.0", 0)
	h.denied(h.hello(2), "cad", "1.0", 1, DenyNotOnboarded)
	h.apply(onboard(2, "secret-1"))
	h.granted(mac(2), "cad", "1.0", 1)
	if b, _ := DenyNotOnboarded.MarshalText(); !strings.Contains(string(b), "not onboarded") {
		t.Fatalf("denial text %q", b)
	}
}

func TestClientKey(t *testing.T) {
	h := withAdmin(t)
	if h.s.ClientKey() != nil {
		t.Fatal("client key before upload")
	}
	der := bytes.Repeat([]byte{0x30}, 294)
	h.apply(audited(&SetClientKey{DER: der}))
	h.apply(audited(&SetClientKey{DER: der})) // the same again: nothing to record
	got := h.s.ClientKey()
	if !bytes.Equal(got, der) {
		t.Fatal("client key differs")
	}
	got[0] = 1
	if h.s.ClientKey()[0] != 0x30 {
		t.Fatal("ClientKey returned the state's own slice")
	}
	recs := h.s.Audit(0, 0)
	if len(recs) != 1 || !strings.HasPrefix(recs[0].Detail, "set the client key (294 bytes, SHA-256 ") {
		t.Fatalf("records %+v", recs)
	}
}

func TestKeysSnapshot(t *testing.T) {
	h := withAdmin(t)
	h.apply(audited(oneTimeKeys(3)))
	h.apply(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "site", Secret: "Our Site Password", Description: "lab"}}})
	h.apply(onboard(1, "secret-1"))
	h.apply(onboard(2, "Our Site Password"))
	h.apply(&SetKeyActive{ID: "k3", Active: false})
	h.apply(&SetClientKey{DER: []byte("client key DER")})
	good := h.snapshot()
	back, err := Restore(Config{}, good)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Snapshot(); !bytes.Equal(again, good) {
		t.Fatal("snapshot of the restored state differs")
	}
	if cred, ok := back.DeviceCredential(mac(1)); !ok || !bytes.Equal(cred, pubKey(1)) {
		t.Fatal("credential lost")
	}
	// The restored state still refuses the used key and shared secrets.
	if _, err := back.Apply(Request{ID: RequestID{Session: 9, Seq: 1}, At: h.now, Command: onboard(5, "secret-1")}); !errors.Is(err, ErrKeyUsed) {
		t.Fatalf("used key after restore: %v", err)
	}
	if _, err := back.Apply(Request{ID: RequestID{Session: 9, Seq: 2}, At: h.now,
		Command: &CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "x", Secret: "secret-2"}}}}); !errors.Is(err, ErrDuplicateKeySecret) {
		t.Fatalf("shared secret after restore: %v", err)
	}

	damaged := map[string][]byte{
		"shared secret":  bytes.Replace(good, []byte(`"secret":"secret-3"`), []byte(`"secret":"secret-2"`), 1),
		"key id twice":   bytes.Replace(good, []byte(`"id":"k3"`), []byte(`"id":"k2"`), 1),
		"one-time twice": bytes.Replace(good, []byte(`"uses":1`), []byte(`"uses":2`), 1),
		"used by nobody": bytes.Replace(good, []byte(`"uses":1`), []byte(`"uses":0`), 1),
		"short secret":   bytes.Replace(good, []byte(`"secret":"secret-3"`), []byte(`"secret":"s3"`), 1),
		"bad key type":   bytes.Replace(good, []byte(`"type":"MASS"`), []byte(`"type":"MANY"`), 1),
		"empty client":   bytes.Replace(good, []byte(`"clientKey":"Y2xpZW50IGtleSBERVI="`), []byte(`"clientKey":""`), 1),
		"empty credential": bytes.Replace(good, []byte(`"credential":"`+b64(pubKey(1))+`"`),
			[]byte(`"credential":""`), 1),
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

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return strings.Trim(string(s), `"`)
}

// TestKeyBoundToDevice: a one-time key made for one device onboards that
// device only; binding is refused on a mass key and for a bad hostid, and
// survives a snapshot.
func TestKeyBoundToDevice(t *testing.T) {
	h := withAdmin(t)
	h.refuse(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "m", Secret: "mass-secret", For: mac(1)}}}, ErrInvalidKey)
	h.refuse(&CreateKeys{KeyType: KeyOneTime, Keys: []NewKey{{ID: "b", Secret: "bad-secret", For: hostid.HostID{Type: hostid.Ethernet, Value: "not a mac"}}}}, ErrInvalidKey)
	h.apply(&CreateKeys{KeyType: KeyOneTime, Keys: []NewKey{{ID: "inv", Secret: "invite-secret", For: mac(2)}}})
	if k, _ := h.s.Key("inv"); k.For != mac(2) || k.State != KeyActive {
		t.Fatalf("key %+v", k)
	}
	records := h.s.AuditCount()
	h.refuse(onboard(1, "invite-secret"), ErrKeyNotForDevice)
	if k, _ := h.s.Key("inv"); k.Uses != 0 || h.s.AuditCount() != records {
		t.Fatalf("a refused onboarding changed the key or the log: %+v", k)
	}
	restored, err := Restore(Config{}, h.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := restored.Key("inv"); k.For != mac(2) {
		t.Fatalf("after a snapshot: %+v", k)
	}
	if res := h.apply(onboard(2, "invite-secret")); res.Onboarded != mac(2) {
		t.Fatalf("the invited device: %+v", res)
	}
}
