module shopagent

go 1.26
