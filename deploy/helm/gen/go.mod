module github.com/coffeebuddy/coffeebuddy/deploy/helm/gen

go 1.26.0

require (
	github.com/coffeebuddy/coffeebuddy/shared v0.0.0
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.4 // indirect

replace (
	github.com/coffeebuddy/coffeebuddy/migrations => ../../../migrations
	github.com/coffeebuddy/coffeebuddy/shared => ../../../shared
)
