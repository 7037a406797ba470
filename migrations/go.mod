module github.com/coffeebuddy/coffeebuddy/migrations

go 1.26.0
