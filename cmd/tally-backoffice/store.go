package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The back office keeps its books in one bbolt file in its data directory:
// entitlements (what the producer sold, by activation ID), the servers
// whose licensing-ID certificates are registered, and the usage each
// server reported, by usage window, recorded once however often it is
// sent.

var (
	bucketEntitlements = []byte("entitlements")
	bucketServers      = []byte("servers")
	bucketUsage        = []byte("usage")
	bucketProducts     = []byte("products")
)

// Errors of the books.
var (
	errUnknownServer      = errors.New("licensing ID not registered with this back office")
	errEntitlementExists  = errors.New("activation ID already exists")
	errInvalidEntitlement = errors.New("invalid entitlement")
)

// product is what a producer sells: feature lines, each with the count one
// unit of the product brings.
type product struct {
	Name  string        `json:"name"`
	Lines []productLine `json:"lines"`
}

type productLine struct {
	Feature string `json:"feature"`
	Version string `json:"version"`
	Count   int64  `json:"count"`
}

// entitlement is what a producer sold under one activation ID: a count of
// units of a product, or of one feature version, which servers activate
// parts of.
type entitlement struct {
	ActivationID string `json:"activationId"`
	Product      string `json:"product,omitempty"`
	Feature      string `json:"feature,omitempty"`
	Version      string `json:"version,omitempty"`
	Count        int64  `json:"count"`
	// Expiry, when set, is the last day the licenses are valid
	// (YYYY-MM-DD); empty is permanent.
	Expiry string `json:"expiry,omitempty"`
	// Allocated is the count each server (by licensing-ID fingerprint)
	// holds.
	Allocated map[string]int64 `json:"allocated,omitempty"`
}

// free is what no server holds.
func (e *entitlement) free() int64 {
	used := int64(0)
	for _, n := range e.Allocated {
		used += n
	}
	return e.Count - used
}

// server is a registered licensing ID.
type server struct {
	Fingerprint string    `json:"fingerprint"`
	Certificate []byte    `json:"certificate"`
	Registered  time.Time `json:"registered"`
	// ResponseSequence is the sequence of the last response made for it.
	ResponseSequence uint64 `json:"responseSequence"`
	// UsageAck is the highest usage window recorded from it.
	UsageAck uint64    `json:"usageAck"`
	LastSeen time.Time `json:"lastSeen,omitzero"`
}

// usageRecord is one usage window a server reported.
type usageRecord struct {
	Server   string          `json:"server"`
	Window   uint64          `json:"window"`
	Received time.Time       `json:"received"`
	Body     json.RawMessage `json:"body"`
}

type store struct{ db *bolt.DB }

func openStore(dataDir string) (*store, error) {
	db, err := bolt.Open(filepath.Join(dataDir, "backoffice.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open the back office's books: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEntitlements, bucketServers, bucketUsage, bucketProducts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func get[T any](b *bolt.Bucket, key string) (*T, error) {
	data := b.Get([]byte(key))
	if data == nil {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("damaged record %q: %w", key, err)
	}
	return v, nil
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// addEntitlement records a new activation ID.
func (s *store) addEntitlement(e entitlement) error {
	if e.ActivationID == "" || len(e.ActivationID) > 128 || (e.Product == "") == (e.Feature == "" || e.Version == "") || e.Count <= 0 {
		return fmt.Errorf("%w: an entitlement needs an activation ID (at most 128 characters), a product or a feature and version, and a count above 0", errInvalidEntitlement)
	}
	if e.Expiry != "" {
		if _, err := time.Parse("2006-01-02", e.Expiry); err != nil {
			return fmt.Errorf("%w: expiry %q: want YYYY-MM-DD", errInvalidEntitlement, e.Expiry)
		}
	}
	e.Allocated = nil
	return s.db.Update(func(tx *bolt.Tx) error {
		if e.Product != "" && tx.Bucket(bucketProducts).Get([]byte(e.Product)) == nil {
			return fmt.Errorf("%w: no product %q", errInvalidEntitlement, e.Product)
		}
		b := tx.Bucket(bucketEntitlements)
		if b.Get([]byte(e.ActivationID)) != nil {
			return fmt.Errorf("%w: %s", errEntitlementExists, e.ActivationID)
		}
		return put(b, e.ActivationID, e)
	})
}

// addProduct records a product.
func (s *store) addProduct(p product) error {
	if p.Name == "" || len(p.Name) > 128 || len(p.Lines) == 0 {
		return fmt.Errorf("%w: a product needs a name and at least one line", errInvalidEntitlement)
	}
	for _, l := range p.Lines {
		if l.Feature == "" || l.Version == "" || l.Count <= 0 {
			return fmt.Errorf("%w: product line %+v needs a feature, a version and a count above 0", errInvalidEntitlement, l)
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProducts)
		if b.Get([]byte(p.Name)) != nil {
			return fmt.Errorf("%w: product %s already exists", errEntitlementExists, p.Name)
		}
		return put(b, p.Name, p)
	})
}

// products lists the products by name.
func (s *store) products() ([]product, error) {
	var out []product
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProducts).ForEach(func(k, v []byte) error {
			var p product
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("damaged product %q: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// entitlements lists every entitlement by activation ID.
func (s *store) entitlements() ([]entitlement, error) {
	var out []entitlement
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEntitlements).ForEach(func(k, v []byte) error {
			var e entitlement
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("damaged entitlement %q: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// register records a licensing-ID certificate; registering it again keeps
// its books.
func (s *store) register(fingerprint string, cert []byte, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketServers)
		srv, err := get[server](b, fingerprint)
		if err != nil {
			return err
		}
		if srv != nil {
			return nil
		}
		return put(b, fingerprint, server{Fingerprint: fingerprint, Certificate: cert, Registered: now})
	})
}

// servers lists the registered licensing IDs.
func (s *store) servers() ([]server, error) {
	var out []server
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketServers).ForEach(func(k, v []byte) error {
			var srv server
			if err := json.Unmarshal(v, &srv); err != nil {
				return fmt.Errorf("damaged server record %q: %w", k, err)
			}
			out = append(out, srv)
			return nil
		})
	})
	return out, err
}

// usage lists the usage windows recorded, by server then window.
func (s *store) usage() ([]usageRecord, error) {
	var out []usageRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsage).ForEach(func(k, v []byte) error {
			var u usageRecord
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("damaged usage record: %w", err)
			}
			out = append(out, u)
			return nil
		})
	})
	return out, err
}

// usageKey orders usage by server and window.
func usageKey(server string, window uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(server+"/"), window)
}

// activation is one activation a server asks for: the count of the
// activation ID it wants to hold (0 returns what it holds).
type activation struct {
	ActivationID string
	Count        int64
}

// activationResult says what became of an activation.
type activationResult struct {
	ActivationID string
	Count        int64
	Result       string // ok, unknown, exceeds
}

// exchange is the books' side of answering a capability request: in one
// transaction it records the usage windows not seen before, applies the
// activations, and returns the server's entitlements and the next
// response sequence. It changes nothing when it fails.
type exchange struct {
	Server  string
	Windows map[uint64]json.RawMessage
	Asks    []activation
	Now     time.Time
}

type exchangeResult struct {
	Sequence    uint64
	UsageAck    uint64
	Activations []activationResult
	Held        []entitlement // with Allocated[server] > 0
	// Products are the products of the entitlements held, by name.
	Products map[string]product
}

func (s *store) exchange(x exchange) (exchangeResult, error) {
	var res exchangeResult
	err := s.db.Update(func(tx *bolt.Tx) error {
		servers, ents, usage := tx.Bucket(bucketServers), tx.Bucket(bucketEntitlements), tx.Bucket(bucketUsage)
		srv, err := get[server](servers, x.Server)
		if err != nil {
			return err
		}
		if srv == nil {
			return fmt.Errorf("%w: %s", errUnknownServer, x.Server)
		}
		ids := slices.Sorted(func(yield func(uint64) bool) {
			for id := range x.Windows {
				if !yield(id) {
					return
				}
			}
		})
		for _, id := range ids {
			key := usageKey(x.Server, id)
			if usage.Get(key) != nil {
				continue // sent again: recorded once
			}
			data, err := json.Marshal(usageRecord{Server: x.Server, Window: id, Received: x.Now, Body: x.Windows[id]})
			if err != nil {
				return err
			}
			if err := usage.Put(key, data); err != nil {
				return err
			}
			srv.UsageAck = max(srv.UsageAck, id)
		}
		for _, a := range x.Asks {
			e, err := get[entitlement](ents, a.ActivationID)
			if err != nil {
				return err
			}
			r := activationResult{ActivationID: a.ActivationID, Count: a.Count, Result: "ok"}
			switch {
			case e == nil:
				r.Result = "unknown"
			case a.Count < 0 || a.Count > e.free()+e.Allocated[x.Server]:
				r.Result = "exceeds"
			default:
				if e.Allocated == nil {
					e.Allocated = map[string]int64{}
				}
				if a.Count == 0 {
					delete(e.Allocated, x.Server)
				} else {
					e.Allocated[x.Server] = a.Count
				}
				if err := put(ents, a.ActivationID, e); err != nil {
					return err
				}
			}
			res.Activations = append(res.Activations, r)
		}
		err = ents.ForEach(func(k, v []byte) error {
			var e entitlement
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("damaged entitlement %q: %w", k, err)
			}
			if e.Allocated[x.Server] > 0 {
				res.Held = append(res.Held, e)
				if e.Product != "" {
					p, err := get[product](tx.Bucket(bucketProducts), e.Product)
					if err != nil || p == nil {
						return fmt.Errorf("entitlement %s names a missing product %q: %v", e.ActivationID, e.Product, err)
					}
					if res.Products == nil {
						res.Products = map[string]product{}
					}
					res.Products[p.Name] = *p
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		srv.ResponseSequence++
		srv.LastSeen = x.Now
		res.Sequence, res.UsageAck = srv.ResponseSequence, srv.UsageAck
		return put(servers, x.Server, srv)
	})
	return res, err
}
