IMAGE = "@IMAGE@"
NAME = "ÿþ"
