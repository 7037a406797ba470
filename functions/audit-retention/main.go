// Command audit-retention handles the audit-retention-tick PingSource: once
// a day it deletes audit rows older than AUDIT_RETENTION (90 days by
// default) in small batches, so the functions writing audit rows meanwhile
// never wait for it, and audits what it deleted.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "audit-retention",
		Needs: function.Needs{DB: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), Options{
				Retention: d.Config.AuditRetention,
				Limits:    audit.DefaultLimits,
				Now:       time.Now,
				Stopping:  d.Stopping,
			}), nil
		},
	})
}
