package rights

import (
	"crypto/ecdsa"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
)

// DemoSource is the source name of the demo rights.
const DemoSource = "demo"

// demoProducerKeyPEM is the demo producer's private key. It is public: it is
// printed here so that `tallyd --dev` works without setup, which means anyone
// can sign rights with it. A server must trust it only with --dev.
const demoProducerKeyPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgywUGpd7rKRJtJMAB
wUCNwf9ZG+vC9Cnggn8vR9tS3xShRANCAASEZkYJGsMCCEmzduCvIAvASBmvCeIj
sQMd8+1LOxpfAV0GmlDF2M8qtSLCKHch+QGBMQFUpkob/WbWOmBApHST
-----END PRIVATE KEY-----
`

// DemoProducerKey returns the demo producer key, the same on every call and
// every machine. The private key is published in this package's source, so
// rights signed with it prove nothing: trust it only in `tallyd --dev`,
// never outside.
func DemoProducerKey() *ecdsa.PrivateKey {
	key, err := ParsePrivateKey([]byte(demoProducerKeyPEM))
	if err != nil {
		panic("rights: the demo producer key constant is broken: " + err.Error())
	}
	return key
}

// DemoLines returns the demo rights of `tallyd --dev` as of now: a counted
// CAD seat, a viewer with overdraft, a solver that expires about a year
// after now (at the start of a UTC day, so the rights of one day are the
// same), a metered export whose counts are consumed after ten minutes, and
// an uncounted reader.
func DemoLines(now time.Time) []core.FeatureLine {
	day := now.UTC().Truncate(24 * time.Hour)
	return []core.FeatureLine{
		{ID: "demo-cad", Name: "cad", Version: version.MustParse("1.0"), Count: 10, VendorString: "edition=pro"},
		{ID: "demo-viewer", Name: "viewer", Version: version.MustParse("2.0"), Count: 25, Overdraft: 5},
		{ID: "demo-solver", Name: "solver", Version: version.MustParse("1.0"), Count: 4, Expiry: day.AddDate(1, 0, 1)},
		{ID: "demo-export", Name: "export", Version: version.MustParse("1.0"), Count: 100, Metered: true, UndoInterval: 10 * time.Minute},
		{ID: "demo-reader", Name: "reader", Version: version.MustParse("2022.01"), Uncounted: true},
	}
}
