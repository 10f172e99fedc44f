module github.com/aimhub/aim/examples/part-comparer/api

go 1.26
