"""The vault: field-level envelope encryption, KEK providers and blind indexes (DESIGN.md §3)."""

from core.vault.blind_index import (
    blind_index,
    generate_blind_index_key,
    load_blind_index_key,
    parse_blind_index_key,
)
from core.vault.cipher import (
    FieldCipher,
    FieldContext,
    ciphertext_key_id,
    decrypt_field,
    decrypt_json,
    encrypt_field,
    encrypt_json,
)
from core.vault.datakeys import (
    WrappedKey,
    needs_rewrap,
    new_data_key,
    new_data_key_id,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from core.vault.errors import (
    DecryptionError,
    KekUnavailableError,
    KeyDestroyedError,
    KeyNotFoundError,
    KeyUnwrapError,
    VaultError,
)
from core.vault.kek import (
    EnvKekProvider,
    InMemoryKekProvider,
    KekProvider,
    LocalKeyFileKekProvider,
)
from core.vault.phone import normalize_phone_vn

__all__ = [
    "DecryptionError",
    "EnvKekProvider",
    "FieldCipher",
    "FieldContext",
    "InMemoryKekProvider",
    "KekProvider",
    "KekUnavailableError",
    "KeyDestroyedError",
    "KeyNotFoundError",
    "KeyUnwrapError",
    "LocalKeyFileKekProvider",
    "VaultError",
    "WrappedKey",
    "blind_index",
    "ciphertext_key_id",
    "decrypt_field",
    "decrypt_json",
    "encrypt_field",
    "encrypt_json",
    "generate_blind_index_key",
    "load_blind_index_key",
    "needs_rewrap",
    "new_data_key",
    "new_data_key_id",
    "normalize_phone_vn",
    "parse_blind_index_key",
    "rewrap_data_key",
    "unwrap_data_key",
    "wrap_data_key",
]
