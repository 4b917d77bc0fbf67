"""What a study is: its file, its space, its objectives and constraints, its storage and folder."""
