package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// clusterMember is a member as GET /api/v1/cluster shows it.
type clusterMember struct {
	ID           string    `json:"id"`
	Address      string    `json:"address"`
	Voter        bool      `json:"voter"`
	Reachable    bool      `json:"reachable"`
	Error        string    `json:"error"`
	State        string    `json:"state"`
	Leader       string    `json:"leader"`
	AppliedIndex uint64    `json:"appliedIndex"`
	LastIndex    uint64    `json:"lastIndex"`
	LastContact  time.Time `json:"lastContact"`
	Level        int       `json:"level"`
}

// clusterInfo is the answer of GET /api/v1/cluster.
type clusterInfo struct {
	Node    string          `json:"node"`
	Leader  string          `json:"leader"`
	Healthy bool            `json:"healthy"`
	Voters  int             `json:"voters"`
	Quorum  int             `json:"quorum"`
	Members []clusterMember `json:"members"`
	// StateLevel is 0 from a server of a release that does not say.
	StateLevel int `json:"stateLevel"`
}

// joinToken is a join token as the API lists it.
type joinToken struct {
	Token       string    `json:"token,omitempty"`
	ID          string    `json:"id"`
	Description string    `json:"description"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	UsedBy      string    `json:"usedBy"`
	UsedAt      time.Time `json:"usedAt"`
	Expired     bool      `json:"expired"`
}

func (c *cli) cluster(args []string) error {
	sub, args, err := subcommand("cluster", args, "status", "remove", "token", "tokens", "delete-token")
	if err != nil {
		return err
	}
	switch sub {
	case "status":
		if _, err := parseArgs(c.commandFlags("cluster status"), args, 0, 0, "cluster status"); err != nil {
			return err
		}
		var info clusterInfo
		return c.get(apiPath("cluster"), nil, &info, func() { printCluster(c.stdout, info) })
	case "remove":
		rest, err := parseArgs(c.commandFlags("cluster remove"), args, 1, 1, "cluster remove NODE")
		if err != nil {
			return err
		}
		return c.send(http.MethodDelete, apiPath("cluster", "members", rest[0]), nil, "", nil, func() {
			fmt.Fprintf(c.stdout, "removed %s from the cluster\n", rest[0])
		})
	case "token":
		return c.createJoinToken(args)
	case "tokens":
		if _, err := parseArgs(c.commandFlags("cluster tokens"), args, 0, 0, "cluster tokens"); err != nil {
			return err
		}
		var p page[joinToken]
		return c.get(apiPath("cluster", "tokens"), nil, &p, func() {
			rows := make([][]string, 0, len(p.Items))
			for _, t := range p.Items {
				state := "unused"
				switch {
				case t.UsedBy != "":
					state = "admitted " + t.UsedBy
				case t.Expired:
					state = "expired"
				}
				rows = append(rows, []string{t.ID, dash(t.Description), stamp(t.Created, "-"), stamp(t.Expires, "-"), state})
			}
			table(c.stdout, "ID\tDESCRIPTION\tCREATED\tEXPIRES\tSTATE", rows)
		})
	default: // delete-token
		rest, err := parseArgs(c.commandFlags("cluster delete-token"), args, 1, 1, "cluster delete-token ID")
		if err != nil {
			return err
		}
		return c.send(http.MethodDelete, apiPath("cluster", "tokens", rest[0]), nil, "", nil, func() {
			fmt.Fprintf(c.stdout, "deleted join token %s\n", rest[0])
		})
	}
}

func (c *cli) createJoinToken(args []string) error {
	fs := c.commandFlags("cluster token")
	var description string
	var ttl time.Duration
	fs.StringVar(&description, "description", "", "")
	fs.DurationVar(&ttl, "ttl", time.Hour, "")
	if _, err := parseArgs(fs, args, 0, 0, "cluster token [--description D] [--ttl 1h]"); err != nil {
		return err
	}
	if ttl <= 0 || ttl > 7*24*time.Hour {
		return usageError("--ttl %s: want more than 0 and at most 168h", ttl)
	}
	body, err := json.Marshal(map[string]any{"description": description, "ttlSeconds": ttl.Seconds()})
	if err != nil {
		return err
	}
	var t joinToken
	return c.send(http.MethodPost, apiPath("cluster", "tokens"), body, "application/json", &t, func() {
		fmt.Fprintln(c.stdout, t.Token)
		fmt.Fprintf(c.stderr, "join token %s admits one node until %s: tallyd --join HOST:8443 --join-token TOKEN\n",
			t.ID, t.Expires.Local().Format(time.RFC3339))
	})
}

func printCluster(out io.Writer, info clusterInfo) {
	health := "healthy"
	if !info.Healthy {
		health = "NOT healthy"
	}
	leader := info.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(out, "leader %s, %d voters (quorum %d), %s; answered by %s\n", leader, info.Voters, info.Quorum, health, info.Node)
	if info.StateLevel > 0 {
		fmt.Fprintf(out, "state level %d\n", info.StateLevel)
	}
	rows := make([][]string, 0, len(info.Members))
	for _, m := range info.Members {
		role, status := m.State, "running"
		if !m.Voter {
			role += " (non-voter)"
		}
		if !m.Reachable {
			role, status = "-", "NOT running: "+m.Error
		}
		contact := "-"
		if !m.LastContact.IsZero() {
			contact = stamp(m.LastContact, "-")
		}
		level := "-"
		switch {
		case m.Level > 0:
			level = strconv.Itoa(m.Level)
		case m.Reachable:
			level = "1"
		}
		rows = append(rows, []string{m.ID, m.Address, role, strconv.FormatUint(m.AppliedIndex, 10), level, contact, status})
	}
	table(out, "NODE\tADDRESS\tROLE\tAPPLIED\tLEVEL\tLAST CONTACT\tSTATUS", rows)
}
