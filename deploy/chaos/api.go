package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// api is an administrator's REST client of every node. Tokens are kept
// per node and renewed on a 401.
type api struct {
	password string
	http     *http.Client

	mu     sync.Mutex
	tokens map[string]string // node IP → token
}

func newAPI(password string) *api {
	return &api{
		password: password,
		http: &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
				MaxIdleConnsPerHost: 4,
			},
		},
		tokens: map[string]string{},
	}
}

// errStatus is an answer other than the one wanted.
type errStatus struct {
	status int
	body   string
}

func (e *errStatus) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func (a *api) do(ctx context.Context, ip, method, path string, body, out any, auth bool) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+ip+":8443"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth {
		tok, err := a.token(ctx, ip)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusUnauthorized && auth {
			a.mu.Lock()
			delete(a.tokens, ip)
			a.mu.Unlock()
		}
		return &errStatus{resp.StatusCode, string(bytes.TrimSpace(data))}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (a *api) token(ctx context.Context, ip string) (string, error) {
	a.mu.Lock()
	tok := a.tokens[ip]
	a.mu.Unlock()
	if tok != "" {
		return tok, nil
	}
	var res struct {
		Token string `json:"token"`
	}
	if err := a.do(ctx, ip, "POST", "/api/v1/auth/login", map[string]string{"user": "admin", "password": a.password}, &res, false); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	a.mu.Lock()
	a.tokens[ip] = res.Token
	a.mu.Unlock()
	return res.Token, nil
}

func (a *api) get(ctx context.Context, ip, path string, out any) error {
	return a.do(ctx, ip, "GET", path, nil, out, true)
}

type health struct {
	Status      string `json:"status"`
	Version     string `json:"version"`
	Node        string `json:"node"`
	Leader      bool   `json:"leader"`
	Fingerprint string `json:"fingerprint"`
}

func (a *api) health(ctx context.Context, ip string) (health, error) {
	var h health
	err := a.do(ctx, ip, "GET", "/api/v1/health", nil, &h, false)
	return h, err
}

type feature struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Total         int64  `json:"total"`
	Used          int64  `json:"used"`
	Available     int64  `json:"available"`
	Overdraft     int64  `json:"overdraft"`
	OverdraftUsed int64  `json:"overdraftUsed"`
	Counted       bool   `json:"counted"`
}

func (a *api) features(ctx context.Context, ip string) ([]feature, error) {
	var res struct {
		Items []feature `json:"items"`
	}
	err := a.get(ctx, ip, "/api/v1/features?pageSize=1000", &res)
	return res.Items, err
}

type hostID struct {
	Value string `json:"value"`
	Type  string `json:"type"`
}

type servedDevice struct {
	Device    hostID `json:"device"`
	Count     int64  `json:"count"`
	Overdraft int64  `json:"overdraft"`
}

func (a *api) served(ctx context.Context, ip, name, version string) ([]servedDevice, error) {
	var res struct {
		Served []servedDevice `json:"served"`
	}
	err := a.get(ctx, ip, "/api/v1/features/"+name+"/"+version, &res)
	return res.Served, err
}

type deviceRow struct {
	ID     hostID `json:"id"`
	Expiry string `json:"expiry"`
}

func (a *api) devices(ctx context.Context, ip string) ([]deviceRow, int, error) {
	var res struct {
		Total int         `json:"total"`
		Items []deviceRow `json:"items"`
	}
	err := a.get(ctx, ip, "/api/v1/devices?pageSize=1000", &res)
	return res.Items, res.Total, err
}

type oneTimeKey struct {
	ID     string          `json:"id"`
	Secret string          `json:"secret"`
	State  json.RawMessage `json:"state"`
	UsedBy hostID          `json:"usedBy"`
	Uses   uint64          `json:"uses"`
}

func (a *api) createKeys(ctx context.Context, ip string, count int) ([]oneTimeKey, error) {
	var res struct {
		Items []oneTimeKey `json:"items"`
	}
	err := a.do(ctx, ip, "POST", "/api/v1/keys", map[string]any{"type": "ONE_TIME", "count": count, "description": "chaos"}, &res, true)
	return res.Items, err
}

func (a *api) keys(ctx context.Context, ip string) ([]oneTimeKey, error) {
	var res struct {
		Items []oneTimeKey `json:"items"`
	}
	err := a.get(ctx, ip, "/api/v1/keys?pageSize=1000", &res)
	return res.Items, err
}

type auditView struct {
	Total    int  `json:"total"`
	Verified bool `json:"verified"`
}

func (a *api) audit(ctx context.Context, ip string) (auditView, error) {
	var v auditView
	err := a.get(ctx, ip, "/api/v1/audit?limit=1", &v)
	return v, err
}

type member struct {
	ID           string `json:"id"`
	Voter        bool   `json:"voter"`
	Reachable    bool   `json:"reachable"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

type clusterView struct {
	Node    string   `json:"node"`
	Leader  string   `json:"leader"`
	Healthy bool     `json:"healthy"`
	Voters  int      `json:"voters"`
	Members []member `json:"members"`
	// StateLevel is 0 from a release that does not say.
	StateLevel int `json:"stateLevel"`
}

func (a *api) cluster(ctx context.Context, ip string) (clusterView, error) {
	var v clusterView
	err := a.get(ctx, ip, "/api/v1/cluster", &v)
	return v, err
}
