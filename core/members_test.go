package core

import (
	"encoding/json"
	"testing"
)

// TestMemberChanged: from state level 3 a membership change lands in the
// audit log with the actor that asked and says what changed; below it is
// refused and writes nothing, as are malformed changes.
func TestMemberChanged(t *testing.T) {
	h := newHarness(t)
	removed := &Audited{Actor: Actor{User: "admin", Address: "192.0.2.1:4431"}, Command: &MemberChanged{Change: MemberRemoved, Node: "n2"}}
	h.apply(&RaiseLevel{Level: 2})
	n := h.s.AuditCount()
	h.refuse(removed, ErrInvalidLevel)
	if h.s.AuditCount() != n {
		t.Fatal("a refused membership change was recorded")
	}

	h.apply(&RaiseLevel{Level: MemberChangeLevel})
	for _, tc := range []struct {
		c      *Audited
		detail string
	}{
		{removed, "removed node n2 from the cluster"},
		{&Audited{Actor: Actor{User: "cluster"}, Command: &MemberChanged{Change: MemberRemoved, Node: "n3", Address: "10.0.0.3:61616", Reason: "no answer for 24h0m0s"}},
			"removed node n3 from the cluster (it was at 10.0.0.3:61616): no answer for 24h0m0s"},
		{&Audited{Actor: Actor{User: "cluster"}, Command: &MemberChanged{Change: MemberAdded, Node: "n4", Address: "10.0.0.4:61616"}},
			"added node n4 as a voter at 10.0.0.4:61616"},
		{&Audited{Actor: Actor{User: "cluster"}, Command: &MemberChanged{Change: MemberReaddress, Node: "n1", Address: "10.0.0.9:61616"}},
			"node n1 is now at 10.0.0.9:61616"},
	} {
		h.apply(tc.c)
		rec := h.s.audit[len(h.s.audit)-1]
		if rec.Action != "memberChanged" || rec.User != tc.c.Actor.User || rec.Address != tc.c.Actor.Address || rec.Detail != tc.detail {
			t.Fatalf("record %+v, want %q by %+v", rec, tc.detail, tc.c.Actor)
		}
		// The command travels in the log and comes back the same.
		b, err := json.Marshal(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		var back Audited
		if err := json.Unmarshal(b, &back); err != nil || *back.Command.(*MemberChanged) != *tc.c.Command.(*MemberChanged) {
			t.Fatalf("round trip of %s: %+v, %v", b, back.Command, err)
		}
	}
	if err := h.s.VerifyAudit(); err != nil {
		t.Fatal(err)
	}

	n = h.s.AuditCount()
	for _, bad := range []*MemberChanged{
		{Change: "renamed", Node: "n2"},
		{Change: MemberRemoved, Node: "bad id"},
		{Change: MemberAdded, Node: "n5"},
		{Change: MemberReaddress, Node: "n5"},
		{Change: MemberRemoved, Node: "n2", Reason: "line\nbreak"},
	} {
		h.refuse(&Audited{Actor: Actor{User: "admin"}, Command: bad}, ErrInvalidCommand)
	}
	if h.s.AuditCount() != n {
		t.Fatal("a malformed membership change was recorded")
	}
}
