"""``python -m smmix_hf.recipes``: the packaged recipes, one per line, with the file each name reads."""

from smmix_hf.recipes import RECIPES_DIR, recipe_names

if __name__ == "__main__":
    for name in recipe_names():
        print(f"{name:24} {RECIPES_DIR / f'{name}.yaml'}")
