package main

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// TestDeviceSessionSurvivesLeaderChange: a device connected to a follower
// keeps its connection and its lease while the leader is killed; its
// renewal after the election is served on the same connection.
func TestDeviceSessionSurvivesLeaderChange(t *testing.T) {
	r := newClusterRig(t)
	if err := r.start("s1", "--dev"); err != nil {
		t.Fatal(err)
	}
	join := strings.TrimPrefix(r.urls["s1"], "https://")
	for _, n := range []string{"s2", "s3"} {
		tok := strings.Fields(r.mustCtl("s1", "cluster", "token"))[0]
		if err := r.start(n, "--join", join, "--join-token", tok); err != nil {
			t.Fatal(err)
		}
	}
	var leader string
	r.waitFor("a healthy cluster of three", func() (bool, string) {
		st, err := r.status("s1")
		leader = st.Leader
		return err == nil && st.Healthy && len(st.Members) == 3, st.Leader
	})
	follower := "s2"
	if leader == follower {
		follower = "s3"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ws := strings.Replace(r.urls[follower], "https://", "wss://", 1) + "/ws/device"
	c, err := deviceproto.Dial(ctx, ws, deviceproto.ClientConfig{
		TLS:   &tls.Config{InsecureSkipVerify: true},
		Hello: deviceproto.Hello{HostIDs: []deviceproto.HostID{{Value: "session-device", Type: "STRING"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cad := deviceproto.FeatureRequest{Name: "cad", Version: "1.0", Count: 2}
	res, err := c.Checkout(ctx, cad)
	if err != nil || len(res.Grants) != 1 || res.Grants[0].Count != 2 {
		t.Fatalf("checkout: %+v %v", res, err)
	}

	r.kill(leader)
	// While the others elect a leader a renewal may be answered "not
	// applied, retry"; the connection stays, and a renewal gets through.
	renewed := false
	for attempt := 0; attempt < 300 && !renewed; attempt++ {
		res, err := c.Renew(ctx, cad)
		select {
		case <-c.Done():
			t.Fatalf("the device's connection ended: %v", c.Err())
		default:
		}
		if err == nil && len(res.Grants) == 1 && res.Grants[0].Count == 2 {
			renewed = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !renewed {
		t.Fatal("no renewal was served after the leader died")
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := r.used(follower); err != nil || u != 2 {
		t.Fatalf("%s says %d used, want the device's 2: %v (status %+v)", follower, u, err, st)
	}
}
