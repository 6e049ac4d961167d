module github.com/tallyhq/tally

go 1.25.0
