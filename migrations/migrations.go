// Package migrations embeds the numbered golang-migrate SQL files so every
// binary and test carries the schema it expects.
package migrations

import "embed"

// FS holds every NNNNNN_title.up.sql / .down.sql pair in this folder.
//
//go:embed *.sql
var FS embed.FS
