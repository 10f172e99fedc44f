module github.com/aimhub/aim/examples/part-comparer/engine

go 1.26
