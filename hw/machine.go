package hw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/jaypipes/ghw"

	"github.com/tallyhq/tally/core/hostid"
)

// ErrUnsupported is returned by Detect on an operating system other than
// Linux, where hw has no sysfs to read.
var ErrUnsupported = errors.New("hardware detection is not supported")

// Config says where to read from.
type Config struct {
	// Root is the directory that stands for "/" when reading sysfs and
	// procfs; "" means "/".
	Root string
}

// MachineType says whether a machine is real hardware.
type MachineType string

// The machine types, named as devices report them.
const (
	Physical MachineType = "PHYSICAL"
	Virtual  MachineType = "VIRTUAL"
	Unknown  MachineType = "UNKNOWN"
)

// Machine is what hw knows about the machine it runs on.
type Machine struct {
	// HostIDs are in a stable order: ETHERNET by interface name, UUID, then
	// SERIAL with the board first and the disks by device name. No HostID is
	// listed twice.
	HostIDs []hostid.HostID
	Type    MachineType
	// Vendor and Product name the machine, from DMI or the device tree; ""
	// when missing.
	Vendor, Product string
}

// Detect reads the HostIDs and type of the machine under cfg.Root. Missing
// data is not an error: a machine with nothing readable gives a Machine of
// type Unknown with no HostIDs. Detect fails only when the root is unusable,
// when ghw itself fails, or off Linux (ErrUnsupported).
func Detect(cfg Config) (Machine, error) {
	if runtime.GOOS != "linux" {
		return Machine{Type: Unknown}, fmt.Errorf("%w on %s", ErrUnsupported, runtime.GOOS)
	}
	root := cfg.Root
	if root == "" {
		root = "/"
	}
	if fi, err := os.Stat(root); err != nil {
		return Machine{}, fmt.Errorf("hardware root: %w", err)
	} else if !fi.IsDir() {
		return Machine{}, fmt.Errorf("hardware root %s: not a directory", root)
	}
	fs := sysfs{root: filepath.Clean(root)}
	args := ghwArgs(fs.root)

	net, err := fromGHW("network interfaces", ghw.Network, args)
	if err != nil {
		return Machine{}, err
	}
	product, err := fromGHW("product", ghw.Product, args)
	if err != nil {
		return Machine{}, err
	}
	board, err := fromGHW("baseboard", ghw.Baseboard, args)
	if err != nil {
		return Machine{}, err
	}
	block, err := fromGHW("block devices", ghw.Block, args)
	if err != nil {
		return Machine{}, err
	}

	fw := readFirmware(fs, product, board)
	var ids idList
	ids.add(hostid.Ethernet, ethernetAddresses(fs, net.NICs)...)
	ids.add(hostid.UUID, fw.uuid)
	ids.add(hostid.Serial, fw.systemSerial, fw.boardSerial)
	ids.add(hostid.Serial, diskSerials(fs, block.Disks)...)

	return Machine{
		HostIDs: ids.list,
		Type:    fw.machineType(fs),
		Vendor:  fw.vendor,
		Product: fw.product,
	}, nil
}

// ghwArgs configures ghw to read under root, to run no external tools and to
// log nothing. The explicit context comes first so that GHW_* environment
// variables (GHW_CHROOT among them) cannot redirect or unmute it.
//
// A discard logger is used rather than ghw.WithDisableWarnings: that only
// raises the level of ghw's default logger on stderr, and does so through a
// level variable that every ghw caller in the process shares.
func ghwArgs(root string) []any {
	return []any{
		context.Background(),
		ghw.WithChroot(root),
		ghw.WithDisableTools(),
		ghw.WithLogger(slog.New(slog.DiscardHandler)),
	}
}

// fromGHW calls one of ghw's loaders. A panic inside ghw (it indexes sysfs
// and procfs text it does not always check) becomes an error, so that a
// surprising file cannot take the server down.
func fromGHW[T any](what string, load func(args ...any) (T, error), args []any) (info T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read %s: ghw panicked: %v", what, p)
		}
	}()
	info, err = load(args...)
	if err != nil {
		return info, fmt.Errorf("read %s: %w", what, err)
	}
	return info, nil
}

// idList collects HostIDs in order, skipping missing, invalid and repeated
// values.
type idList struct {
	list []hostid.HostID
	seen map[hostid.HostID]bool
}

func (l *idList) add(t hostid.Type, values ...string) {
	for _, v := range values {
		if missing(v) {
			continue
		}
		id, err := hostid.New(v, t)
		if err != nil || l.seen[id] {
			continue
		}
		if l.seen == nil {
			l.seen = make(map[hostid.HostID]bool)
		}
		l.seen[id] = true
		l.list = append(l.list, id)
	}
}
