from keras_mimo.cli import main

raise SystemExit(main())
