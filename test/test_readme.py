"""The README opens with the two commands, and its parameter table is the generated one."""
from pathlib import Path

from lewm_ros.control.param_specs import markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / 'README.md').read_text()


def test_two_commands_first_and_ci_runs_the_test_command():
    first_block = README.split('```bash', 1)[1].split('```', 1)[0]
    assert 'scripts/demo.sh' in first_block and 'scripts/test.sh' in first_block
    assert 'scripts/test.sh' in (ROOT / '.ci' / 'run').read_text()


def test_parameter_table_is_generated_from_the_declarations():
    assert markdown_table().strip() in README, 'regenerate: python -m lewm_ros.control.param_specs --markdown'
