package transport

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/model"
	"github.com/tallyhq/tally/core/version"
)

// healthResponse is the answer of GET /api/v1/health.
type healthResponse struct {
	Status      string `json:"status"`
	Version     string `json:"version"`
	Node        string `json:"node"`
	Fingerprint string `json:"fingerprint"`
	Leader      bool   `json:"leader"`
	Time        string `json:"time"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, healthResponse{
		Status: "ok", Version: s.cfg.Version, Node: s.cfg.NodeID, Fingerprint: s.cfg.Identity.Fingerprint(),
		Leader: s.cfg.Leader(), Time: s.cfg.Now().UTC().Format(time.RFC3339),
	})
	return nil
}

// listPaged answers a paged list: it checks the paging parameters, then
// reads the rows and the default page size in one read.
func listPaged[T any](s *Server, w http.ResponseWriter, r *http.Request, rows func(*core.State) []T) error {
	p, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	var items []T
	err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		items = rows(st)
		if p.size == 0 {
			p.size = pageSizeProperty(st)
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(items, p))
	return nil
}

// pageSizeProperty reads server.pageSize.
func pageSizeProperty(st *core.State) int {
	p, err := st.Property("server.pageSize")
	if err != nil {
		return defaultPageSize
	}
	n, err := strconv.Atoi(p.Value)
	if err != nil || n < 1 || n > maxPageSize {
		return defaultPageSize
	}
	return n
}

func (s *Server) listFeatures(w http.ResponseWriter, r *http.Request) error {
	name, filter := r.URL.Query()["name"]
	return listPaged(s, w, r, func(st *core.State) []core.FeatureSummary {
		all := st.Features()
		if !filter {
			return all
		}
		var out []core.FeatureSummary
		for _, f := range all {
			if f.Name == lastValue(name) {
				out = append(out, f)
			}
		}
		return out
	})
}

func (s *Server) featureDetails(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	v, err := version.Parse(r.PathValue("version"))
	if err != nil {
		return err
	}
	var d core.FeatureDetail
	err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		d, err = st.FeatureDetails(name, v)
		return err
	})
	if err != nil {
		return err
	}
	if d.Served == nil {
		d.Served = []core.ServedDevice{}
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// deviceRow is a row of the Devices view with its online state, which
// the node that holds the device's connection knows, not the state.
type deviceRow struct {
	core.DeviceSummary
	Online bool `json:"online"`
}

func (s *Server) online(id hostid.HostID) bool {
	return s.cfg.Online != nil && s.cfg.Online(id)
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) error {
	return listPaged(s, w, r, func(st *core.State) []deviceRow {
		devices := st.Devices()
		rows := make([]deviceRow, len(devices))
		for i, d := range devices {
			rows[i] = deviceRow{DeviceSummary: d, Online: s.online(d.ID)}
		}
		return rows
	})
}

// deviceID reads the {type}/{value} of a device path in canonical form.
func deviceID(r *http.Request) (hostid.HostID, error) {
	return hostid.Parse(r.PathValue("value"), r.PathValue("type"))
}

func (s *Server) deviceDetails(w http.ResponseWriter, r *http.Request) error {
	id, err := deviceID(r)
	if err != nil {
		return err
	}
	var d core.DeviceDetail
	err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		d, err = st.Device(id)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		core.DeviceDetail
		Online bool `json:"online"`
	}{d, s.online(d.Info.ID)})
	return nil
}

func (s *Server) dropDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := deviceID(r)
	if err != nil {
		return err
	}
	return s.applyNoContent(w, r, &core.DropDevice{Device: id})
}

func (s *Server) listReservations(w http.ResponseWriter, r *http.Request) error {
	return listPaged(s, w, r, (*core.State).ReservationRows)
}

func (s *Server) exportReservations(w http.ResponseWriter, r *http.Request) error {
	var groups []core.ReservationGroup
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		groups = st.Reservations()
		return nil
	})
	if err != nil {
		return err
	}
	b, err := core.FormatReservations(groups)
	if err != nil {
		return err
	}
	writeRaw(w, http.StatusOK, "application/json; charset=utf-8", append(b, '\n'))
	return nil
}

func (s *Server) importReservations(w http.ResponseWriter, r *http.Request) error {
	data, err := readBody(w, r, maxReservationsBody, mediaJSON)
	if err != nil {
		return err
	}
	groups, err := core.ParseReservations(data)
	if err != nil {
		return err
	}
	return s.applyNoContent(w, r, &core.SetReservations{Groups: groups})
}

func (s *Server) deleteReservationGroup(w http.ResponseWriter, r *http.Request) error {
	return s.applyNoContent(w, r, &core.DeleteReservations{Names: []string{r.PathValue("group")}})
}

// modelResponse is the answer of GET /api/v1/model.
type modelResponse struct {
	Text string `json:"text"`
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) error {
	var text string
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		text = st.ModelText()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelResponse{Text: text})
	return nil
}

func (s *Server) putModel(w http.ResponseWriter, r *http.Request) error {
	data, err := readBody(w, r, maxModelBody, mediaText)
	if err != nil {
		return err
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: the model text is not valid UTF-8", core.ErrInvalidModel)
	}
	// Parsed here as well as in core so that a syntax error keeps its
	// line and column on every node: a follower gets the leader's error
	// as text only.
	if _, err := model.Parse(string(data)); err != nil {
		return fmt.Errorf("%w: %w", core.ErrInvalidModel, err)
	}
	return s.applyNoContent(w, r, &core.SetModel{Text: string(data)})
}

func (s *Server) deleteModel(w http.ResponseWriter, r *http.Request) error {
	return s.applyNoContent(w, r, &core.DeleteModel{})
}

// countedList is the JSON form of an unpaged list.
type countedList[T any] struct {
	Total int `json:"total"`
	Items []T `json:"items"`
}

func listAll[T any](s *Server, w http.ResponseWriter, r *http.Request, rows func(*core.State) []T) error {
	var items []T
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		items = rows(st)
		return nil
	})
	if err != nil {
		return err
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, countedList[T]{Total: len(items), Items: items})
	return nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) error {
	return listAll(s, w, r, (*core.State).Pools)
}

func (s *Server) listProperties(w http.ResponseWriter, r *http.Request) error {
	return listAll(s, w, r, (*core.State).Properties)
}

func (s *Server) getProperty(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readProperty(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) readProperty(r *http.Request, name string) (core.Property, error) {
	var p core.Property
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		var err error
		p, err = st.Property(name)
		return err
	})
	return p, err
}

// propertyRequest is the body of PUT /api/v1/properties/{name}.
type propertyRequest struct {
	Value *string `json:"value"`
}

func (s *Server) putProperty(w http.ResponseWriter, r *http.Request) error {
	var req propertyRequest
	if err := readJSON(w, r, maxPropertyBody, &req); err != nil {
		return err
	}
	if req.Value == nil {
		return badRequest("bad_json", `the body wants "value"`)
	}
	name := r.PathValue("name")
	if err := s.apply(r, &core.SetProperty{Name: name, Value: *req.Value}); err != nil {
		return err
	}
	p, err := s.readProperty(r, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// rightsResponse is the answer to an installed rights file.
type rightsResponse struct {
	Source   string `json:"source"`
	Sequence uint64 `json:"sequence"`
	Lines    int    `json:"lines"`
}

func (s *Server) uploadRights(w http.ResponseWriter, r *http.Request) error {
	data, err := readBody(w, r, maxRightsBody, mediaJSON, mediaBinary)
	if err != nil {
		return err
	}
	cmd, err := s.cfg.Rights.Verify(data)
	if err != nil {
		return &rightsRefused{err}
	}
	if cmd == nil {
		return &rightsRefused{fmt.Errorf("the rights file holds no rights")}
	}
	if err := s.apply(r, cmd); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rightsResponse{Source: cmd.Source, Sequence: cmd.Sequence, Lines: len(cmd.Lines)})
	return nil
}

// apply proposes c on behalf of the caller and logs the change. Every
// change the API makes goes through here, wrapped in core.Audited, so that
// the audit log records who asked for it and from where.
func (s *Server) apply(r *http.Request, c core.Command) error {
	p := principalOf(r)
	if _, err := s.cfg.Store.Apply(r.Context(), &core.Audited{Actor: p.actor(), Command: c}); err != nil {
		return err
	}
	s.log.Info("administrative change", "command", c.Type(), "user", p.user.Name, "path", r.URL.Path, "remote", r.RemoteAddr)
	return nil
}

func (s *Server) applyNoContent(w http.ResponseWriter, r *http.Request, c core.Command) error {
	if err := s.apply(r, c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
