// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title A stablecoin for local development and tests (6 decimals, like USDC).
/// @notice Production configuration points paystream at a real token instead.
/// Like USDC, the owner can blacklist an address: it can then neither send nor
/// receive the token (the fault suite uses it for a payee the token refuses).
/// As in USDC v2.2, the flag is the top bit of the account's balance slot, so a
/// transfer reads it with the balance it reads anyway (no extra storage read).
/// The zero address is flagged from the start: a transfer to it reverts with
/// `Blacklisted(0x0)`. The other errors are OpenZeppelin's (ERC-6093).
contract TestStablecoin is IERC20, IERC20Metadata, IERC20Errors, Ownable {
    uint256 private constant BLACKLISTED = 1 << 255;

    /// Per account: the balance (low 255 bits) and the blacklist flag (top bit).
    mapping(address => uint256) private _slots;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply; // below 2**255: no balance can reach the flag

    error Blacklisted(address account);

    event BlacklistChanged(address indexed account, bool blacklisted);

    constructor(address owner_) Ownable(owner_) {
        _slots[address(0)] = BLACKLISTED; // nothing is ever sent to or from the zero address
    }

    function name() external pure returns (string memory) {
        return "Paystream Test Dollar";
    }

    function symbol() external pure returns (string memory) {
        return "PTUSD";
    }

    function decimals() external pure returns (uint8) {
        return 6;
    }

    function balanceOf(address account) external view returns (uint256) {
        return _slots[account] & ~BLACKLISTED;
    }

    function blacklisted(address account) external view returns (bool) {
        return _slots[account] & BLACKLISTED != 0;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert ERC20InvalidSpender(address(0));
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert ERC20InsufficientAllowance(msg.sender, allowed, value);
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    /// @notice Mint test funds (owner only).
    function mint(address to, uint256 amount) external onlyOwner {
        uint256 slot = _slots[to];
        if (slot & BLACKLISTED != 0) revert Blacklisted(to); // the zero address too
        uint256 supply = totalSupply + amount;
        require(supply < BLACKLISTED, "supply too large");
        totalSupply = supply;
        unchecked {
            _slots[to] = slot + amount; // at most the supply: below the flag
        }
        emit Transfer(address(0), to, amount);
    }

    /// @notice Refuse (or allow again) every transfer from or to `account` (owner only).
    function setBlacklisted(address account, bool value) external onlyOwner {
        if (account == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 slot = _slots[account];
        _slots[account] = value ? slot | BLACKLISTED : slot & ~BLACKLISTED;
        emit BlacklistChanged(account, value);
    }

    function _transfer(address from, address to, uint256 value) private {
        uint256 fromSlot = _slots[from];
        if (fromSlot < value) revert ERC20InsufficientBalance(from, fromSlot & ~BLACKLISTED, value);
        uint256 toSlot;
        // The balance arithmetic and both flags in one block: a flagged sender
        // or receiver (the zero address is flagged from the start) reverts.
        // Balances stay below 2**255 (the supply does), so neither line wraps.
        assembly ("memory-safe") {
            mstore(0x20, _slots.slot)
            mstore(0x00, from)
            sstore(keccak256(0x00, 0x40), sub(fromSlot, value))
            mstore(0x00, to)
            let toKey := keccak256(0x00, 0x40)
            toSlot := sload(toKey)
            sstore(toKey, add(toSlot, value))
        }
        if ((fromSlot | toSlot) >> 255 != 0) {
            revert Blacklisted(fromSlot >> 255 != 0 ? from : to);
        }
        emit Transfer(from, to, value);
    }
}
