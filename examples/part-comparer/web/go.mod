module github.com/aimhub/aim/examples/part-comparer/web

go 1.26
