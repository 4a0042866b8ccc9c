module github.com/segmented-registry/token-server

go 1.26
