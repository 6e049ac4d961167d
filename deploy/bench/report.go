package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Status of a figure against its target.
const (
	statusMet          = "met"
	statusMissed       = "MISSED"
	statusExtrapolated = "extrapolated (not measured at full size)"
	statusInfo         = "info"
	statusNotMeasured  = "NOT MEASURED"
	statusMeasured     = "measured (no bound in DESIGN.md)"
)

// figure is one measured value beside its target.
type figure struct {
	Target string  `json:"target"` // the row of DESIGN.md section 8, or what the figure shows
	Want   string  `json:"want"`
	Got    string  `json:"got"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Status string  `json:"status"`
	Source string  `json:"source"` // how it was measured
	Note   string  `json:"note,omitempty"`
}

// machine is where the figures were measured.
type machine struct {
	Cores    int    `json:"cores"`
	MemoryMB int    `json:"memoryMiB"`
	CPU      string `json:"cpu"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Arch     string `json:"arch"`
	// LoadAvg is /proc/loadavg when the run began: other work on the
	// machine shares the cores with the measurements.
	LoadAvg string `json:"loadAvgAtStart"`
}

func (m machine) Summary() string {
	return fmt.Sprintf("%d cores, %d MiB RAM, %s, Linux %s, %s", m.Cores, m.MemoryMB, m.CPU, m.Kernel, m.Go)
}

// report is the whole run.
type report struct {
	Date    string         `json:"date"`
	Commit  string         `json:"commit"`
	Machine machine        `json:"machine"`
	Short   bool           `json:"short"`
	Figures []figure       `json:"figures"`
	Sizes   []binarySize   `json:"binarySizes,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
	// Profiles are the CPU profiles' top functions, files beside the report.
	Profiles []string `json:"profiles,omitempty"`
	Errors   []string `json:"errors,omitempty"`
	Missed   []string `json:"missed"`
}

func (r *report) add(f figure) {
	logf("%s: %s (want %s) %s", f.Target, f.Got, f.Want, f.Status)
	r.Figures = append(r.Figures, f)
}

func (r *report) detail(key string, v any) {
	if r.Details == nil {
		r.Details = map[string]any{}
	}
	r.Details[key] = v
}

// atLeast and atMost mark a value against a bound.
func atLeast(v, bound float64) string {
	if v >= bound {
		return statusMet
	}
	return statusMissed
}

func atMost(v, bound float64) string {
	if v <= bound {
		return statusMet
	}
	return statusMissed
}

// targets are the rows of DESIGN.md section 8; a row without a figure is
// reported as not measured.
var targets = []string{
	targetEngine, targetWS1, targetWS3, targetIdle, targetFailover, targetFailoverLoss,
	targetDiscovery, targetRSS, targetSize, targetOverAlloc, targetStartup,
}

const (
	targetEngine       = "checkouts through the engine, one core"
	targetWS1          = "checkouts over WebSocket, one node, durable"
	targetWS3          = "checkouts over WebSocket, three nodes on one host, durable"
	targetIdle         = "connected idle devices (TLS WebSocket) on one node"
	targetFailover     = "leader killed → checkouts succeed again"
	targetFailoverLoss = "leader killed → no granted lease lost"
	targetDiscovery    = "discovery: DISCOVER → OFFER"
	targetRSS          = "idle RSS of tallyd"
	targetSize         = "stripped arm64 tallyd binary"
	targetOverAlloc    = "over-allocations under any fault"
	targetStartup      = "start-up with 100,000 devices of state (issue 10)"
)

func (r *report) finish() {
	seen := map[string]bool{}
	for _, f := range r.Figures {
		seen[f.Target] = true
		if strings.HasPrefix(f.Status, statusMissed) {
			r.Missed = append(r.Missed, fmt.Sprintf("%s: %s, want %s", f.Target, f.Got, f.Want))
		}
	}
	for _, t := range targets {
		if !seen[t] {
			note := "not measured in this run"
			if t == targetOverAlloc {
				note = "checked by the chaos harness (make chaos), not by make bench"
			}
			r.Figures = append(r.Figures, figure{Target: t, Got: "—", Status: statusNotMeasured, Note: note})
		}
	}
	if r.Missed == nil {
		r.Missed = []string{}
	}
}

func (r *report) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "REPORT.md"), r.markdown(), 0o644)
}

func (r *report) markdown() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Tally benchmark report\n\n")
	fmt.Fprintf(&b, "- commit: `%s`\n- date: %s\n", r.Commit, r.Date)
	fmt.Fprintf(&b, "- machine: %d cores, %d MiB RAM, %s (%s), Linux %s\n- Go: %s\n",
		r.Machine.Cores, r.Machine.MemoryMB, r.Machine.CPU, r.Machine.Arch, r.Machine.Kernel, r.Machine.Go)
	if r.Short {
		fmt.Fprintf(&b, "- **short run** (BENCH_SHORT): small loads and few idle connections; figures are indicative only\n")
	}
	fmt.Fprintf(&b, "- load average when the run began: %s\n", r.Machine.LoadAvg)
	fmt.Fprintf(&b, "\nThe load generators run on the same machine as the servers they measure and share its cores.\n\n")
	if len(r.Missed) > 0 {
		fmt.Fprintf(&b, "## Missed targets\n\n")
		for _, m := range r.Missed {
			fmt.Fprintf(&b, "- **%s**\n", m)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "No measured target was missed.\n\n")
	}
	fmt.Fprintf(&b, "## Targets (DESIGN.md section 8)\n\n| what | target | measured | status | how | note |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		if f.Status == statusInfo {
			continue
		}
		st := f.Status
		if strings.HasPrefix(st, statusMissed) || st == statusNotMeasured {
			st = "**" + st + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Target, cell(f.Want), cell(f.Got), st, cell(f.Source), cell(f.Note))
	}
	fmt.Fprintf(&b, "\n## Other figures\n\n| what | measured | how | note |\n|---|---|---|---|\n")
	for _, f := range r.Figures {
		if f.Status == statusInfo {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Target, cell(f.Got), cell(f.Source), cell(f.Note))
		}
	}
	if len(r.Sizes) > 0 {
		fmt.Fprintf(&b, "\n## Binary sizes (stripped, as make cross builds them)\n\n| target | binary | bytes | MiB |\n|---|---|---:|---:|\n")
		for _, s := range r.Sizes {
			fmt.Fprintf(&b, "| %s | %s | %d | %.2f |\n", s.Target, s.Binary, s.Bytes, float64(s.Bytes)/(1<<20))
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(&b, "\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(&b, "\n## CPU profiles of the hot paths\n\n")
		for _, p := range r.Profiles {
			fmt.Fprintf(&b, "- [%s](%s)\n", p, p)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "\n## Errors (sections that did not finish)\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	fmt.Fprintf(&b, "\nraw figures and details: report.json\n")
	return b.Bytes()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// machineInfo reads the machine from /proc and the go command.
func machineInfo() machine {
	m := machine{Cores: runtime.NumCPU(), Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.Atoi(f[1])
				m.MemoryMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			k = strings.TrimSpace(k)
			if ok && (k == "model name" || k == "Model" || k == "Hardware" || k == "cpu model") {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if m.CPU == "" {
		m.CPU = "unknown CPU"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	} else {
		m.Go = runtime.Version()
	}
	return m
}

// commit is the short commit, with "-dirty" when the tree has changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}
