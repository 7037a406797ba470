package postgres_test

import (
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
