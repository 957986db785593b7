from hemcli.cli import entry

entry()
