from avexplorer.cli import main

# Guarded: the app's training runs in a spawned process, which imports this module again as
# __mp_main__ when the app was started with `python -m avexplorer`.
if __name__ == "__main__":
    raise SystemExit(main())
