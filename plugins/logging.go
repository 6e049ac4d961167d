package plugins

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter is an hclog.Logger that writes through a *slog.Logger. The
// host gives it to go-plugin, which logs its own messages through it and
// re-logs each line a connector writes to stderr (hclog JSON keeps level
// and fields), so that connector output lands in tallyd's log.
type hclogAdapter struct {
	logger  *slog.Logger
	name    string
	implied []any
	// killed is set when the host kills the process on purpose; go-plugin's
	// report of that exit is then no error.
	killed *atomic.Bool
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(logger *slog.Logger) *hclogAdapter {
	return &hclogAdapter{logger: logger, killed: new(atomic.Bool)}
}

// exitedMessage is what go-plugin logs when the process ends.
const exitedMessage = "plugin process exited"

// levelTrace is hclog's Trace in slog's scale, below Debug.
const levelTrace = slog.LevelDebug - 4

func toSlogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (l *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	ctx := context.Background()
	sl := toSlogLevel(level)
	if msg == exitedMessage && l.killed.Load() {
		sl = slog.LevelInfo
	}
	if !l.logger.Enabled(ctx, sl) {
		return
	}
	attrs := make([]any, 0, 1+len(l.implied)+len(args)/2+1)
	if l.name != "" {
		attrs = append(attrs, slog.String("component", l.name))
	}
	attrs = append(attrs, l.implied...)
	attrs = append(attrs, hclogAttrs(args)...)
	l.logger.Log(ctx, sl, msg, attrs...)
}

// hclogAttrs turns hclog's key-value arguments into slog attributes.
func hclogAttrs(args []any) []any {
	attrs := make([]any, 0, len(args)/2+1)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			attrs = append(attrs, slog.Any("EXTRA_VALUE_AT_END", args[i]))
			break
		}
		key, value := fmt.Sprint(args[i]), args[i+1]
		if f, ok := value.(hclog.Format); ok && len(f) > 0 {
			value = fmt.Sprintf(fmt.Sprint(f[0]), f[1:]...)
		}
		// go-plugin names the executable "plugin"; that key is the
		// connector's name in tallyd's log.
		if key == "plugin" {
			key = "command"
		}
		attrs = append(attrs, slog.Any(key, value))
	}
	return attrs
}

func (l *hclogAdapter) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *hclogAdapter) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *hclogAdapter) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *hclogAdapter) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *hclogAdapter) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *hclogAdapter) enabled(level hclog.Level) bool {
	return l.logger.Enabled(context.Background(), toSlogLevel(level))
}

func (l *hclogAdapter) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *hclogAdapter) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *hclogAdapter) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *hclogAdapter) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *hclogAdapter) IsError() bool { return l.enabled(hclog.Error) }

func (l *hclogAdapter) ImpliedArgs() []any { return l.implied }

func (l *hclogAdapter) With(args ...any) hclog.Logger {
	c := *l
	c.implied = append(append([]any(nil), l.implied...), hclogAttrs(args)...)
	return &c
}

func (l *hclogAdapter) Name() string { return l.name }

func (l *hclogAdapter) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.ResetNamed(name)
}

func (l *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

// SetLevel does nothing: the level is the slog handler's.
func (l *hclogAdapter) SetLevel(hclog.Level) {}

// GetLevel is the lowest level the slog handler lets through; go-plugin
// skips parsing connector lines below it.
func (l *hclogAdapter) GetLevel() hclog.Level {
	for _, level := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if l.enabled(level) {
			return level
		}
	}
	return hclog.Off
}

func (l *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return newLineWriter(func(line string) { l.Log(level, line) })
}

// maxLine is where lineWriter cuts a line that has no end.
const maxLine = 4 << 10

// lineWriter calls emit for each line written to it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line string)
}

func newLineWriter(emit func(line string)) *lineWriter {
	return &lineWriter{emit: emit}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.flush(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) >= maxLine {
		w.flush(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *lineWriter) flush(line []byte) {
	if text := strings.TrimSpace(string(line)); text != "" {
		w.emit(text)
	}
}
